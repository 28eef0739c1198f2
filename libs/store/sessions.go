package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ConsoleSession is an operator console session (services/admin): the SHA-256
// of its id (the id itself lives only in the browser's cookie), its CSRF form
// token and when it ends.
type ConsoleSession struct {
	IDHash    []byte
	CSRFToken string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateConsoleSession stores a new session and deletes every expired one.
func (s *Store) CreateConsoleSession(ctx context.Context, cs ConsoleSession) error {
	if len(cs.IDHash) != 32 || cs.CSRFToken == "" || cs.ExpiresAt.IsZero() {
		return errors.New("store: a console session needs a 32-byte id hash, a CSRF token and an expiry")
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM console_sessions WHERE expires_at <= now()`); err != nil {
		return fmt.Errorf("store: deleting expired console sessions: %w", err)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO console_sessions (id_hash, csrf_token, expires_at) VALUES ($1, $2, $3)`,
		cs.IDHash, cs.CSRFToken, cs.ExpiresAt)
	if err != nil {
		return fmt.Errorf("store: creating a console session: %w", err)
	}
	return nil
}

// ConsoleSessionByHash returns the unexpired session whose id hashes to
// idHash, or ErrNotFound.
func (s *Store) ConsoleSessionByHash(ctx context.Context, idHash []byte) (ConsoleSession, error) {
	var cs ConsoleSession
	err := s.pool.QueryRow(ctx, `SELECT id_hash, csrf_token, created_at, expires_at FROM console_sessions
		WHERE id_hash = $1 AND expires_at > now()`, idHash).Scan(&cs.IDHash, &cs.CSRFToken, &cs.CreatedAt, &cs.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return ConsoleSession{}, fmt.Errorf("console session: %w", ErrNotFound)
	}
	return cs, err
}

// DeleteConsoleSession ends a session (logout); ending an unknown one is not
// an error.
func (s *Store) DeleteConsoleSession(ctx context.Context, idHash []byte) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM console_sessions WHERE id_hash = $1`, idHash)
	return err
}
