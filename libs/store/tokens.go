package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Tokens are a binding's Sage OAuth tokens, in plaintext (sealed at rest).
type Tokens struct {
	Access           string
	Refresh          string
	AccessExpiresAt  time.Time
	RefreshExpiresAt time.Time
	Scope            string
	RequestedByID    string
	Version          int64
	// UpdatedAt is when the pair was last obtained or refreshed (read back
	// only).
	UpdatedAt time.Time
}

// SaveTokens stores a fresh token pair (after the authorization-code exchange).
func (s *Store) SaveTokens(ctx context.Context, tenantID string, t Tokens) error {
	defer s.changedTenant(tenantID)
	return saveTokens(ctx, s, s.pool, tenantID, t)
}

// dbExec is satisfied by both the pool and a transaction.
type dbExec interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func saveTokens(ctx context.Context, s *Store, db dbExec, tenantID string, t Tokens) error {
	acc, err := s.sealer.SealString(t.Access)
	if err != nil {
		return err
	}
	ref, err := s.sealer.SealString(t.Refresh)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `INSERT INTO oauth_tokens (tenant_id, access_token_sealed, refresh_token_sealed,
			access_expires_at, refresh_expires_at, scope, requested_by_id)
		VALUES ($1,$2,$3,$4,$5,$6,$7)
		ON CONFLICT (tenant_id) DO UPDATE SET access_token_sealed = EXCLUDED.access_token_sealed,
			refresh_token_sealed = EXCLUDED.refresh_token_sealed, access_expires_at = EXCLUDED.access_expires_at,
			refresh_expires_at = EXCLUDED.refresh_expires_at, scope = EXCLUDED.scope,
			requested_by_id = EXCLUDED.requested_by_id, version = oauth_tokens.version + 1, updated_at = now()`,
		tenantID, acc, ref, t.AccessExpiresAt, t.RefreshExpiresAt, t.Scope, t.RequestedByID)
	return err
}

func (s *Store) scanTokens(row pgx.Row) (Tokens, error) {
	var t Tokens
	var acc, ref []byte
	if err := row.Scan(&acc, &ref, &t.AccessExpiresAt, &t.RefreshExpiresAt, &t.Scope, &t.RequestedByID, &t.Version, &t.UpdatedAt); err != nil {
		return Tokens{}, err
	}
	var err error
	if t.Access, err = s.sealer.OpenString(acc); err != nil {
		return Tokens{}, err
	}
	if t.Refresh, err = s.sealer.OpenString(ref); err != nil {
		return Tokens{}, err
	}
	return t, nil
}

const tokenCols = `access_token_sealed, refresh_token_sealed, access_expires_at, refresh_expires_at, scope, requested_by_id, version, updated_at`

// Tokens returns a binding's tokens or ErrNotFound. With CacheTenants they
// are served from memory (RefreshTokens always reads Postgres under its lock).
func (s *Store) Tokens(ctx context.Context, tenantID string) (Tokens, error) {
	return cached(s, func(c *tenantCache) map[string]Tokens { return c.tokens }, tenantID, func() (Tokens, error) {
		t, err := s.scanTokens(s.pool.QueryRow(ctx, `SELECT `+tokenCols+` FROM oauth_tokens WHERE tenant_id = $1`, tenantID))
		return t, notFound(err, "oauth tokens of "+tenantID)
	})
}

// RefreshTokens runs refresh under a per-binding lock that holds across processes
// (a Postgres transaction-level advisory lock), because Sage refresh tokens are
// single use: two concurrent refreshes would revoke the binding. Inside the lock
// it re-reads the tokens; when need(current) is false (another process refreshed
// meanwhile) it returns them untouched. Otherwise it calls refresh and commits the
// rotated pair before returning, so the new access token is only used once the new
// refresh token is durable.
func (s *Store) RefreshTokens(ctx context.Context, tenantID string, need func(Tokens) bool,
	refresh func(context.Context, Tokens) (Tokens, error)) (Tokens, error) {
	var out Tokens
	defer s.changedTenant(tenantID)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('oauth:' || $1, 0))`, tenantID); err != nil {
			return err
		}
		cur, err := s.scanTokens(tx.QueryRow(ctx, `SELECT `+tokenCols+` FROM oauth_tokens WHERE tenant_id = $1`, tenantID))
		if err != nil {
			return notFound(err, "oauth tokens of "+tenantID)
		}
		if !need(cur) {
			out = cur
			return nil
		}
		next, err := refresh(ctx, cur)
		if err != nil {
			return err
		}
		if err := saveTokens(ctx, s, tx, tenantID, next); err != nil {
			return fmt.Errorf("store: saving rotated tokens: %w", err)
		}
		next.Version = cur.Version + 1
		out = next
		return nil
	})
	return out, err
}

// DeleteTokens forgets a binding's tokens (after revoke on disconnect).
func (s *Store) DeleteTokens(ctx context.Context, tenantID string) error {
	defer s.changedTenant(tenantID)
	_, err := s.pool.Exec(ctx, `DELETE FROM oauth_tokens WHERE tenant_id = $1`, tenantID)
	return err
}

// CreateOAuthState remembers the CSRF state of an authorization request.
func (s *Store) CreateOAuthState(ctx context.Context, tenantID, state string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO oauth_states (state, tenant_id) VALUES ($1, $2)`, state, tenantID)
	return err
}

// ErrBadState means an OAuth callback carried an unknown, used or expired state.
var ErrBadState = errors.New("unknown, already used or expired OAuth state: start the Sage connection again")

// ConsumeOAuthState returns the tenant of a state and marks it used; states are
// single use and valid for maxAge.
func (s *Store) ConsumeOAuthState(ctx context.Context, state string, maxAge time.Duration) (string, error) {
	var tenant string
	err := s.pool.QueryRow(ctx, `UPDATE oauth_states SET used_at = now()
		WHERE state = $1 AND used_at IS NULL AND created_at > now() - $2::interval RETURNING tenant_id`,
		state, maxAge.String()).Scan(&tenant)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrBadState
	}
	return tenant, err
}
