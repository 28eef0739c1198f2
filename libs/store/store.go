package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgersync/ledger/libs/secrets"
)

// Store is the shared state. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	sealer *secrets.Sealer

	// The tenant cache (CacheTenants); nil cache means none.
	watchOnce sync.Once
	cache     *tenantCache
	stopWatch func()
	// Tests only: where the listener's probes go, and how long it waits.
	probeHook func(ctx context.Context, token string) error
	probeWait time.Duration
}

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Open connects to url, applies migrations and returns a Store that seals secrets
// with sealer. Close it when done.
func Open(ctx context.Context, url string, sealer *secrets.Sealer) (*Store, error) {
	if sealer == nil {
		return nil, errors.New("store: a secrets.Sealer is required (set LEDGER_SECRET_KEY)")
	}
	if err := Migrate(ctx, url); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: LEDGER_DATABASE_URL is not a valid Postgres URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connecting: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connecting: %w", err)
	}
	return &Store{pool: pool, sealer: sealer}, nil
}

// Close stops the tenant cache's listener, if any, and releases the pool.
func (s *Store) Close() {
	if s.stopWatch != nil {
		s.stopWatch()
	}
	s.pool.Close()
}

// Pool exposes the pool for service-specific queries and health checks.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks the database is reachable (readiness).
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

func notFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return err
}
