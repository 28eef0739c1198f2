package sagewriter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/store"
)

// refreshMargin is how close to expiry an access token is refreshed (Sage access
// tokens live 300 s; reference §7 rule 1).
const refreshMargin = 60 * time.Second

// TokenStore is the part of the store a TokenSource needs.
type TokenStore interface {
	Tokens(ctx context.Context, tenantID string) (store.Tokens, error)
	RefreshTokens(ctx context.Context, tenantID string, need func(store.Tokens) bool,
		refresh func(context.Context, store.Tokens) (store.Tokens, error)) (store.Tokens, error)
}

// Refresher trades a refresh token for a new pair; sage.OAuth implements it.
type Refresher interface {
	Refresh(ctx context.Context, refresh string) (sage.Token, error)
}

// TokenSource is one binding's sage.TokenSource backed by the store. It reads
// the stored tokens on every call and refreshes them when the access token
// expires within 60 s. Refreshing happens inside store.RefreshTokens, which
// holds a cross-process lock and re-checks the need under it, so concurrent
// callers (goroutines or replicas) make one token request and the rotated
// refresh token is committed before the new access token is used.
//
// A refusal of the refresh token surfaces as an error wrapping
// sage.ErrInvalidGrant.
type TokenSource struct {
	st     TokenStore
	oauth  Refresher
	tenant string
	now    func() time.Time

	mu   sync.Mutex
	last string // access token most recently handed out
}

// NewTokenSource returns the TokenSource of tenantID's binding.
func NewTokenSource(st TokenStore, oauth Refresher, tenantID string) *TokenSource {
	return &TokenSource{st: st, oauth: oauth, tenant: tenantID, now: time.Now}
}

var _ sage.TokenSource = (*TokenSource)(nil)

// AccessToken returns a token valid for at least a minute.
func (t *TokenSource) AccessToken(ctx context.Context) (string, error) {
	cur, err := t.st.Tokens(ctx, t.tenant)
	if errors.Is(err, store.ErrNotFound) {
		return "", errNoTokens
	}
	if err != nil {
		return "", storeErr("reading Sage tokens", err)
	}
	if !t.expiring(cur) {
		return t.hand(cur.Access), nil
	}
	next, err := t.refresh(ctx, t.expiring)
	if err != nil {
		return "", err
	}
	return t.hand(next.Access), nil
}

// ForceRefresh refreshes after Sage rejected the access token last handed out
// (a 401), whatever its stored expiry says. When another caller already
// rotated that token away, the newer token is kept and no request is made.
func (t *TokenSource) ForceRefresh(ctx context.Context) error {
	t.mu.Lock()
	rejected := t.last
	t.mu.Unlock()
	_, err := t.refresh(ctx, func(cur store.Tokens) bool {
		return cur.Access == rejected || t.expiring(cur)
	})
	return err
}

func (t *TokenSource) expiring(tok store.Tokens) bool {
	return tok.AccessExpiresAt.Sub(t.now()) < refreshMargin
}

func (t *TokenSource) hand(access string) string {
	t.mu.Lock()
	t.last = access
	t.mu.Unlock()
	return access
}

// refreshFailure marks an error of the token endpoint (as opposed to one of the
// store), so the caller can tell them apart after RefreshTokens returns.
type refreshFailure struct{ err error }

func (e *refreshFailure) Error() string { return e.err.Error() }
func (e *refreshFailure) Unwrap() error { return e.err }

func (t *TokenSource) refresh(ctx context.Context, need func(store.Tokens) bool) (store.Tokens, error) {
	next, err := t.st.RefreshTokens(ctx, t.tenant, need, func(ctx context.Context, cur store.Tokens) (store.Tokens, error) {
		tok, err := t.oauth.Refresh(ctx, cur.Refresh)
		if err != nil {
			return store.Tokens{}, &refreshFailure{err: err}
		}
		return store.Tokens{
			Access: tok.Access, Refresh: tok.Refresh, AccessExpiresAt: tok.AccessExpiresAt,
			RefreshExpiresAt: tok.RefreshExpiresAt, Scope: tok.Scope, RequestedByID: tok.RequestedByID,
		}, nil
	})
	if err != nil {
		var rf *refreshFailure
		if errors.As(err, &rf) {
			return store.Tokens{}, fmt.Errorf("refreshing the Sage access token of %s: %w", t.tenant, rf)
		}
		if errors.Is(err, store.ErrNotFound) {
			return store.Tokens{}, errNoTokens
		}
		return store.Tokens{}, storeErr("rotating Sage tokens", err)
	}
	return next, nil
}
