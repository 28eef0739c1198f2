// Package lifecycle keeps a binding's Sage OAuth tokens alive between the
// authorization-code connect (done by the admin service) and the disconnect.
//
//   - [TokenSource] hands out access tokens to the API client and refreshes
//     them ahead of expiry inside the store's cross-process per-binding lock
//     (store.RefreshTokens): Sage refresh tokens are single use, so two replicas
//     refreshing at once would revoke the binding. The rotated refresh token is
//     committed before the new access token is used.
//   - [KeepAlive] refreshes idle bindings before Sage's 31-day refresh-token
//     expiry (Sage advises a refresh at least monthly).
//   - [Revoke] revokes the refresh token at Sage and forgets the tokens (the
//     admin's disconnect).
//
// A refresh token Sage refuses (invalid_grant) surfaces as an error wrapping
// sage.ErrInvalidGrant; [MarkRevoked] flips the binding to token_revoked.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/store"
)

// RefreshMargin is how close to expiry an access token is refreshed (Sage access
// tokens live 300 s).
const RefreshMargin = 60 * time.Second

// Store is the token persistence the lifecycle needs; *store.Store implements it.
type Store interface {
	Tokens(ctx context.Context, tenantID string) (store.Tokens, error)
	RefreshTokens(ctx context.Context, tenantID string, need func(store.Tokens) bool,
		refresh func(context.Context, store.Tokens) (store.Tokens, error)) (store.Tokens, error)
}

// Refresher trades a refresh token for a new pair; sage.OAuth implements it.
type Refresher interface {
	Refresh(ctx context.Context, refresh string) (sage.Token, error)
}

// Sentinels.
var (
	// ErrNoTokens: the binding has never been authorised (or was disconnected).
	ErrNoTokens = errors.New("the tenant has no Sage tokens: connect Sage for it")
)

// RefreshError is a failure of the token endpoint (as opposed to the store).
// It wraps sage.ErrInvalidGrant when Sage refused the refresh token.
type RefreshError struct{ Err error }

func (e *RefreshError) Error() string { return e.Err.Error() }

// Unwrap returns the token endpoint's error.
func (e *RefreshError) Unwrap() error { return e.Err }

// StoreError is a failure of the token store.
type StoreError struct {
	What string
	Err  error
}

func (e *StoreError) Error() string { return e.What + ": " + e.Err.Error() }

// Unwrap returns the store's error.
func (e *StoreError) Unwrap() error { return e.Err }

// TokenSource is one binding's sage.TokenSource backed by the store. It reads
// the stored tokens on every call (another replica may have rotated them) and
// refreshes when the access token expires within RefreshMargin.
type TokenSource struct {
	st     Store
	oauth  Refresher
	tenant string
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time

	mu   sync.Mutex
	last string // access token most recently handed out
}

// NewTokenSource returns the TokenSource of tenantID's binding.
func NewTokenSource(st Store, oauth Refresher, tenantID string) *TokenSource {
	return &TokenSource{st: st, oauth: oauth, tenant: tenantID}
}

var _ sage.TokenSource = (*TokenSource)(nil)

func (t *TokenSource) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// AccessToken returns a token valid for at least RefreshMargin.
func (t *TokenSource) AccessToken(ctx context.Context) (string, error) {
	cur, err := t.st.Tokens(ctx, t.tenant)
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrNoTokens
	}
	if err != nil {
		return "", &StoreError{What: "reading Sage tokens", Err: err}
	}
	if !t.expiring(cur) {
		return t.hand(cur.Access), nil
	}
	next, err := refresh(ctx, t.st, t.oauth, t.tenant, t.expiring)
	if err != nil {
		return "", err
	}
	return t.hand(next.Access), nil
}

// ForceRefresh refreshes after Sage rejected the access token last handed out
// (a 401), whatever its stored expiry says. When another caller already rotated
// that token away, the newer token is kept and no request is made.
func (t *TokenSource) ForceRefresh(ctx context.Context) error {
	t.mu.Lock()
	rejected := t.last
	t.mu.Unlock()
	_, err := refresh(ctx, t.st, t.oauth, t.tenant, func(cur store.Tokens) bool {
		return cur.Access == rejected || t.expiring(cur)
	})
	return err
}

func (t *TokenSource) expiring(tok store.Tokens) bool {
	return tok.AccessExpiresAt.Sub(t.now()) < RefreshMargin
}

func (t *TokenSource) hand(access string) string {
	t.mu.Lock()
	t.last = access
	t.mu.Unlock()
	return access
}

// refresh rotates the tenant's tokens under the store's per-binding lock when
// need(current) holds there.
func refresh(ctx context.Context, st Store, oauth Refresher, tenant string, need func(store.Tokens) bool) (store.Tokens, error) {
	next, err := st.RefreshTokens(ctx, tenant, need, func(ctx context.Context, cur store.Tokens) (store.Tokens, error) {
		tok, err := oauth.Refresh(ctx, cur.Refresh)
		if err != nil {
			return store.Tokens{}, &RefreshError{Err: err}
		}
		return store.Tokens{
			Access: tok.Access, Refresh: tok.Refresh, AccessExpiresAt: tok.AccessExpiresAt,
			RefreshExpiresAt: tok.RefreshExpiresAt, Scope: tok.Scope, RequestedByID: tok.RequestedByID,
		}, nil
	})
	if err != nil {
		var rf *RefreshError
		if errors.As(err, &rf) {
			return store.Tokens{}, fmt.Errorf("refreshing the Sage tokens of %s: %w", tenant, rf)
		}
		if errors.Is(err, store.ErrNotFound) {
			return store.Tokens{}, ErrNoTokens
		}
		return store.Tokens{}, &StoreError{What: "rotating Sage tokens", Err: err}
	}
	return next, nil
}

// StatusSetter flips a binding's Sage status; *store.Store implements it.
type StatusSetter interface {
	SetSageStatus(ctx context.Context, tenantID, status, businessID string) error
}

// MarkRevoked records that Sage refused the binding's refresh token: the
// binding becomes token_revoked and its writes pause until it is re-authorised.
func MarkRevoked(ctx context.Context, st StatusSetter, tenantID string) error {
	return st.SetSageStatus(ctx, tenantID, store.StatusTokenRevoked, "")
}
