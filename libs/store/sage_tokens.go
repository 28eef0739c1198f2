package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// RevokeTokens disconnects a binding's Sage side: under the same cross-process
// lock as RefreshTokens (so no refresh can rotate the token away meanwhile) it
// reads the tokens, calls revoke with them (the caller revokes the refresh token
// at Sage), then deletes them and marks the binding revoked, in one transaction.
// When revoke fails nothing changes. A binding without tokens is only marked
// revoked.
func (s *Store) RevokeTokens(ctx context.Context, tenantID string, revoke func(context.Context, Tokens) error) error {
	defer s.changedTenant(tenantID)
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('oauth:' || $1, 0))`, tenantID); err != nil {
			return err
		}
		cur, err := s.scanTokens(tx.QueryRow(ctx, `SELECT `+tokenCols+` FROM oauth_tokens WHERE tenant_id = $1`, tenantID))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			if err := revoke(ctx, cur); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM oauth_tokens WHERE tenant_id = $1`, tenantID); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE bindings SET status = 'revoked', updated_at = now() WHERE tenant_id = $1`, tenantID)
		if err == nil && tag.RowsAffected() == 0 {
			return notFound(pgx.ErrNoRows, "tenant "+tenantID)
		}
		return err
	})
}

// StaleToken is a binding whose tokens need a keep-alive refresh, with the
// version of the tokens seen (a refresh under the lock is skipped when another
// process rotated them meanwhile, i.e. the version moved on).
type StaleToken struct {
	TenantID string
	Version  int64
}

// StaleTokens lists the bindings that are active and whose refresh token
// expires before expiresBefore or was last rotated before rotatedBefore: the
// idle bindings a keep-alive refresh must visit before Sage's 31-day expiry.
func (s *Store) StaleTokens(ctx context.Context, expiresBefore, rotatedBefore time.Time) ([]StaleToken, error) {
	rows, err := s.pool.Query(ctx, `SELECT o.tenant_id, o.version FROM oauth_tokens o JOIN bindings b USING (tenant_id)
		WHERE b.status = 'active' AND (o.refresh_expires_at < $1 OR o.updated_at < $2)
		ORDER BY o.refresh_expires_at`, expiresBefore, rotatedBefore)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StaleToken
	for rows.Next() {
		var t StaleToken
		if err := rows.Scan(&t.TenantID, &t.Version); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
