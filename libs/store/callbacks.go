package store

import (
	"context"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// CallbackEntity names one row of a shop's sync-state mirror: an entity type
// and its Magento id (the tenant is the lock's).
type CallbackEntity struct {
	EntityType string
	MagentoID  int64
}

// CallbackMarkUpdate is one delivered result: the entity, when its run finished
// and which run it was.
type CallbackMarkUpdate struct {
	Entity     CallbackEntity
	FinishedAt time.Time
	RunID      string
}

// CallbackLocker hands out cross-process locks on sync-state entities, so two
// replicas of statecallback never deliver for the same entity at once. It has a
// small pool of its own: a lock is held on one connection for as long as the
// shop takes to answer, and that must not starve the store's pool.
type CallbackLocker struct {
	pool *pgxpool.Pool
}

// NewCallbackLocker opens a locker whose pool holds at most maxConns
// connections (one per batch in flight). Close it when done.
func (s *Store) NewCallbackLocker(ctx context.Context, maxConns int) (*CallbackLocker, error) {
	if maxConns < 1 {
		return nil, fmt.Errorf("store: callback locker needs at least one connection, got %d", maxConns)
	}
	cfg := s.pool.Config().Copy()
	cfg.MaxConns = int32(maxConns)
	cfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: callback locker: %w", err)
	}
	return &CallbackLocker{pool: pool}, nil
}

// Close releases the locker's pool (and with it any lock still held).
func (l *CallbackLocker) Close() { l.pool.Close() }

// CallbackLock holds session-level advisory locks on some entities of one
// tenant, on one connection. Marks read and written through it are committed
// statement by statement, so a mark is durable as soon as SetMarks returns,
// while the lock is still held. Release it exactly once.
type CallbackLock struct {
	conn     *pgxpool.Conn
	tenantID string
	keys     []string // lock keys actually held
}

func callbackLockKey(tenantID string, e CallbackEntity) string {
	return fmt.Sprintf("callback:%s:%s:%d", tenantID, e.EntityType, e.MagentoID)
}

// Lock tries to lock every entity without waiting (pg_try_advisory_lock on a
// 64-bit hash of tenant, type and id). locked[i] says whether entities[i] is
// now held; an entity held elsewhere (another replica delivering it) is
// reported false, never waited for, so locking a batch cannot deadlock. A hash
// collision only makes an unrelated entity look busy for a moment.
func (l *CallbackLocker) Lock(ctx context.Context, tenantID string, entities []CallbackEntity) (lock *CallbackLock, locked []bool, err error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	keys := make([]string, len(entities))
	for i, e := range entities {
		keys[i] = callbackLockKey(tenantID, e)
	}
	rows, err := conn.Query(ctx, `SELECT k.i FROM unnest($1::text[]) WITH ORDINALITY AS k(key, i)
		WHERE pg_try_advisory_lock(hashtextextended(k.key, 0))`, keys)
	if err != nil {
		// The locks taken before the error (if any) die with the connection.
		discard(conn)
		return nil, nil, err
	}
	locked = make([]bool, len(entities))
	lock = &CallbackLock{conn: conn, tenantID: tenantID}
	for rows.Next() {
		var i int64
		if err := rows.Scan(&i); err != nil {
			rows.Close()
			discard(conn)
			return nil, nil, err
		}
		locked[i-1] = true
		lock.keys = append(lock.keys, keys[i-1])
	}
	if err := rows.Err(); err != nil {
		discard(conn)
		return nil, nil, err
	}
	return lock, locked, nil
}

// discard closes a pooled connection instead of returning it: session locks it
// may hold are released by the server when the session ends.
func discard(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Conn().Close(ctx)
	conn.Release()
}

// Marks returns the callback marks (finished_at of the newest delivered
// result) of the given entities; entities never delivered are absent.
func (cl *CallbackLock) Marks(ctx context.Context, entities []CallbackEntity) (map[CallbackEntity]time.Time, error) {
	if cl == nil || cl.conn == nil {
		return nil, ErrCallbackLockReleased
	}
	types := make([]string, len(entities))
	ids := make([]int64, len(entities))
	for i, e := range entities {
		types[i], ids[i] = e.EntityType, e.MagentoID
	}
	// QueryExecModeExec plans on every call: a plan cached while the table was
	// small turns into a full scan once it holds 100,000 marks.
	rows, err := cl.conn.Query(ctx, `SELECT m.entity_type, m.magento_entity_id, m.finished_at FROM callback_marks m
		JOIN unnest($2::text[], $3::bigint[]) AS e(entity_type, magento_entity_id)
			ON m.entity_type = e.entity_type AND m.magento_entity_id = e.magento_entity_id
		WHERE m.tenant_id = $1`, pgx.QueryExecModeExec, cl.tenantID, types, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[CallbackEntity]time.Time, len(entities))
	for rows.Next() {
		var e CallbackEntity
		var at time.Time
		if err := rows.Scan(&e.EntityType, &e.MagentoID, &at); err != nil {
			return nil, err
		}
		out[e] = at
	}
	return out, rows.Err()
}

// SetMarks records delivered results in one statement, with the same rule as
// SetCallbackMark: a mark only moves forward, and an equal one (the same result
// delivered again) refreshes delivered_at.
func (cl *CallbackLock) SetMarks(ctx context.Context, updates []CallbackMarkUpdate) error {
	if cl == nil || cl.conn == nil {
		return ErrCallbackLockReleased
	}
	if len(updates) == 0 {
		return nil
	}
	types := make([]string, len(updates))
	ids := make([]int64, len(updates))
	ats := make([]time.Time, len(updates))
	runs := make([]string, len(updates))
	for i, u := range updates {
		types[i], ids[i], ats[i], runs[i] = u.Entity.EntityType, u.Entity.MagentoID, u.FinishedAt, u.RunID
	}
	_, err := cl.conn.Exec(ctx, `INSERT INTO callback_marks (tenant_id, entity_type, magento_entity_id, finished_at, sync_run_id)
		SELECT $1, u.entity_type, u.magento_entity_id, u.finished_at, u.sync_run_id
		FROM unnest($2::text[], $3::bigint[], $4::timestamptz[], $5::uuid[]) AS u(entity_type, magento_entity_id, finished_at, sync_run_id)
		ON CONFLICT (tenant_id, entity_type, magento_entity_id) DO UPDATE
		SET finished_at = EXCLUDED.finished_at, sync_run_id = EXCLUDED.sync_run_id, delivered_at = now()
		WHERE callback_marks.finished_at <= EXCLUDED.finished_at`,
		cl.tenantID, types, ids, ats, runs)
	return err
}

// Release unlocks the entities and returns the connection to the pool. When
// unlocking fails the connection is closed instead, which releases the locks
// just the same.
func (cl *CallbackLock) Release() {
	if cl == nil || cl.conn == nil {
		return
	}
	conn := cl.conn
	cl.conn = nil
	if len(cl.keys) == 0 {
		conn.Release()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k`, cl.keys)
	if err != nil {
		discard(conn)
		return
	}
	conn.Release()
}

// ErrCallbackLockReleased is returned by a CallbackLock used after Release.
var ErrCallbackLockReleased = errors.New("store: callback lock already released")
