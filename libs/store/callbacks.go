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
//
// Its connections plan every statement per call (QueryExecModeExec): a plan
// cached while callback_marks was small turns into a full scan once it holds
// 100,000 marks.
func (s *Store) NewCallbackLocker(ctx context.Context, maxConns int) (*CallbackLocker, error) {
	if maxConns < 1 {
		return nil, fmt.Errorf("store: callback locker needs at least one connection, got %d", maxConns)
	}
	cfg := s.pool.Config().Copy()
	cfg.MaxConns = int32(maxConns)
	cfg.MinConns = 0
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: callback locker: %w", err)
	}
	return &CallbackLocker{pool: pool}, nil
}

// Close releases the locker's pool (and with it any lock still held).
func (l *CallbackLocker) Close() { l.pool.Close() }

// CallbackLock holds transaction-level advisory locks on some entities of one
// tenant: one transaction, open on one connection from Lock until Commit or
// Release, which end it and with it the locks. The marks Commit writes become
// visible in the same instant the locks are freed (the server releases a
// transaction's locks only after its commit is visible), so a replica that
// takes an entity next always reads the mark of the result delivered before.
// A connection lost midway (a crash, a network failure) rolls the transaction
// back: the locks are freed and no mark is written, so the results are
// delivered again, never marked without having been sent.
type CallbackLock struct {
	conn     *pgxpool.Conn
	tenantID string
}

func callbackLockKey(tenantID string, e CallbackEntity) string {
	return fmt.Sprintf("callback:%s:%s:%d", tenantID, e.EntityType, e.MagentoID)
}

// Lock begins the lock's transaction, tries to lock every entity without
// waiting (pg_try_advisory_xact_lock on a 64-bit hash of tenant, type and id)
// and reads their callback marks (finished_at of the newest delivered result),
// in one round trip and no commit. locked[i] says whether entities[i] is now
// held; an entity held elsewhere (another replica delivering it) is reported
// false, never waited for, so locking a batch cannot deadlock. A hash
// collision only makes an unrelated entity look busy for a moment. marks holds
// the entities delivered before, locked ones only.
//
// The marks are read by a statement of their own, after the locking one: under
// READ COMMITTED each statement reads what was committed when it started, so a
// mark committed by the replica that held an entity until just before is seen
// (read in the locking statement itself, it could be missed). The isolation
// level is set explicitly: under a server default of REPEATABLE READ or
// SERIALIZABLE the marks would be read from the snapshot the locking
// statement took before it had the locks.
//
// The round trip ends with SET LOCAL idle_in_transaction_session_timeout = 0:
// the transaction stays open, idle, while the shop is called, and a session
// ended under it by the server's timeout would free the entities while their
// calls are still running. Being a statement without a snapshot, it also
// replaces the marks query's portal, whose snapshot would otherwise hold back
// vacuum's horizon (backend_xmin) for as long as the shop takes; the
// transaction takes no transaction id until its commit writes the marks.
//
// The keys are the ones the session locks of earlier versions took; a session
// and a transaction lock on one key exclude each other, so replicas of both
// versions can run side by side during a rolling deploy.
func (l *CallbackLocker) Lock(ctx context.Context, tenantID string, entities []CallbackEntity) (lock *CallbackLock, locked []bool, marks map[CallbackEntity]time.Time, err error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	keys := make([]string, len(entities))
	types := make([]string, len(entities))
	ids := make([]int64, len(entities))
	for i, e := range entities {
		keys[i] = callbackLockKey(tenantID, e)
		types[i], ids[i] = e.EntityType, e.MagentoID
	}
	b := &pgx.Batch{}
	b.Queue(`BEGIN ISOLATION LEVEL READ COMMITTED`)
	b.Queue(`SELECT k.i FROM unnest($1::text[]) WITH ORDINALITY AS k(key, i)
		WHERE pg_try_advisory_xact_lock(hashtextextended(k.key, 0))`, keys)
	b.Queue(`SELECT m.entity_type, m.magento_entity_id, m.finished_at FROM callback_marks m
		JOIN unnest($2::text[], $3::bigint[]) AS e(entity_type, magento_entity_id)
			ON m.entity_type = e.entity_type AND m.magento_entity_id = e.magento_entity_id
		WHERE m.tenant_id = $1`, tenantID, types, ids)
	b.Queue(`SET LOCAL idle_in_transaction_session_timeout = 0`)
	locked = make([]bool, len(entities))
	all := make(map[CallbackEntity]time.Time, len(entities))
	err = func() error {
		br := conn.SendBatch(ctx, b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		rows, _ := br.Query()
		var i int64
		if _, err := pgx.ForEachRow(rows, []any{&i}, func() error {
			locked[i-1] = true
			return nil
		}); err != nil {
			return err
		}
		rows, _ = br.Query()
		var e CallbackEntity
		var at time.Time
		if _, err := pgx.ForEachRow(rows, []any{&e.EntityType, &e.MagentoID, &at}, func() error {
			all[e] = at
			return nil
		}); err != nil {
			return err
		}
		if _, err := br.Exec(); err != nil { // SET LOCAL
			return err
		}
		return br.Close()
	}()
	if err != nil {
		// The locks taken before the error (if any) die with the connection.
		discard(conn)
		return nil, nil, nil, err
	}
	marks = make(map[CallbackEntity]time.Time, len(all))
	for i, e := range entities {
		if at, ok := all[e]; ok && locked[i] {
			marks[e] = at
		}
	}
	return &CallbackLock{conn: conn, tenantID: tenantID}, locked, marks, nil
}

// discard closes a pooled connection instead of returning it: its transaction
// (and the locks it holds) ends with the session.
func discard(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Conn().Close(ctx)
	conn.Release()
}

// Commit records delivered results and commits, which frees every lock, in one
// round trip and one commit; the lock is released either way. A mark only
// moves forward, and an equal one (the same result delivered again) refreshes
// delivered_at. When it fails nothing was written (the transaction is rolled
// back with its connection) and the locks are free all the same.
func (cl *CallbackLock) Commit(ctx context.Context, updates []CallbackMarkUpdate) error {
	if cl == nil || cl.conn == nil {
		return ErrCallbackLockReleased
	}
	conn := cl.conn
	cl.conn = nil
	b := &pgx.Batch{}
	if len(updates) > 0 {
		types := make([]string, len(updates))
		ids := make([]int64, len(updates))
		ats := make([]time.Time, len(updates))
		runs := make([]string, len(updates))
		for i, u := range updates {
			types[i], ids[i], ats[i], runs[i] = u.Entity.EntityType, u.Entity.MagentoID, u.FinishedAt, u.RunID
		}
		b.Queue(`INSERT INTO callback_marks (tenant_id, entity_type, magento_entity_id, finished_at, sync_run_id)
		SELECT $1, u.entity_type, u.magento_entity_id, u.finished_at, u.sync_run_id
		FROM unnest($2::text[], $3::bigint[], $4::timestamptz[], $5::uuid[]) AS u(entity_type, magento_entity_id, finished_at, sync_run_id)
		ON CONFLICT (tenant_id, entity_type, magento_entity_id) DO UPDATE
		SET finished_at = EXCLUDED.finished_at, sync_run_id = EXCLUDED.sync_run_id, delivered_at = now()
		WHERE callback_marks.finished_at <= EXCLUDED.finished_at`,
			cl.tenantID, types, ids, ats, runs)
	}
	b.Queue(`COMMIT`)
	err := conn.SendBatch(ctx, b).Close()
	if err == nil && conn.Conn().PgConn().TxStatus() != 'I' {
		// COMMIT of a failed transaction answers ROLLBACK without an error.
		err = errors.New("store: callback marks not committed")
	}
	if err != nil {
		discard(conn)
		return err
	}
	conn.Release()
	return nil
}

// Release ends the lock's transaction without writing anything (a rollback),
// which frees the locks, and returns the connection to the pool; after Commit
// it does nothing. When the rollback fails the connection is closed instead,
// which frees the locks just the same.
func (cl *CallbackLock) Release() {
	if cl == nil || cl.conn == nil {
		return
	}
	conn := cl.conn
	cl.conn = nil
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `ROLLBACK`); err != nil {
		discard(conn)
		return
	}
	conn.Release()
}

// ErrCallbackLockReleased is returned by a CallbackLock used after Commit or
// Release.
var ErrCallbackLockReleased = errors.New("store: callback lock already released")
