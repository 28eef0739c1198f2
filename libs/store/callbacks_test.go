package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ledgersync/ledger/libs/store"
)

func TestCallbackLocks(t *testing.T) {
	t.Parallel()
	st := open(t)
	ctx := context.Background()
	if _, err := st.CreateTenant(ctx, "cb", "Callback shop"); err != nil {
		t.Fatal(err)
	}
	// Two replicas, each with its own locker.
	a, err := st.NewCallbackLocker(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := st.NewCallbackLocker(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	inv := func(id int64) store.CallbackEntity { return store.CallbackEntity{EntityType: "invoice", MagentoID: id} }
	t1 := time.Date(2026, 4, 29, 10, 0, 0, 123456000, time.UTC)

	la, locked, marks, err := a.Lock(ctx, "cb", []store.CallbackEntity{inv(1), inv(2)})
	if err != nil || fmt.Sprint(locked) != "[true true]" || len(marks) != 0 {
		t.Fatalf("first lock: %v, marks %v, %v", locked, marks, err)
	}
	lb, locked, _, err := b.Lock(ctx, "cb", []store.CallbackEntity{inv(2), inv(3), {EntityType: "creditmemo", MagentoID: 2}})
	if err != nil || fmt.Sprint(locked) != "[false true true]" {
		t.Fatalf("second lock: %v, %v; want invoice 2 busy, the rest free", locked, err)
	}
	lb.Release()
	lb.Release() // idempotent

	// While the shop is called the lock's transaction is idle, holding no
	// snapshot that would hold back vacuum.
	var idle, xmin int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*), count(backend_xmin) FROM pg_stat_activity
		WHERE datname = current_database() AND state = 'idle in transaction'`).Scan(&idle, &xmin); err != nil {
		t.Fatal(err)
	}
	if idle != 1 || xmin != 0 {
		t.Errorf("%d sessions idle in a transaction, %d of them holding an xmin; want the lock's, without one", idle, xmin)
	}

	// Marks written by Commit are visible when the locks are free, not before.
	if err := la.Commit(ctx, []store.CallbackMarkUpdate{
		{Entity: inv(1), FinishedAt: t1, RunID: uuid.NewString()},
		{Entity: inv(2), FinishedAt: t1.Add(time.Hour), RunID: uuid.NewString()},
	}); err != nil {
		t.Fatal(err)
	}
	if err := la.Commit(ctx, nil); err != store.ErrCallbackLockReleased {
		t.Errorf("second Commit: %v, want ErrCallbackLockReleased", err)
	}
	la.Release() // after Commit: nothing to do

	lb, locked, marks, err = b.Lock(ctx, "cb", []store.CallbackEntity{inv(1), inv(2), inv(3)})
	if err != nil || fmt.Sprint(locked) != "[true true true]" {
		t.Fatalf("after commit: %v, %v", locked, err)
	}
	if len(marks) != 2 || !marks[inv(1)].Equal(t1) || !marks[inv(2)].Equal(t1.Add(time.Hour)) {
		t.Fatalf("marks after commit %v", marks)
	}
	// Marks only move forward.
	if err := lb.Commit(ctx, []store.CallbackMarkUpdate{{Entity: inv(2), FinishedAt: t1, RunID: uuid.NewString()}}); err != nil {
		t.Fatal(err)
	}
	if at, ok, err := st.CallbackMark(ctx, "cb", "invoice", 2); err != nil || !ok || !at.Equal(t1.Add(time.Hour)) {
		t.Errorf("CallbackMark = %s, %v, %v; an older mark replaced a newer one", at, ok, err)
	}

	// A lock released without Commit writes nothing; one whose Commit fails
	// writes nothing either; both free the entities.
	la, _, _, err = a.Lock(ctx, "cb", []store.CallbackEntity{inv(3)})
	if err != nil {
		t.Fatal(err)
	}
	la.Release()
	la, _, _, err = a.Lock(ctx, "cb", []store.CallbackEntity{inv(3), inv(4)})
	if err != nil {
		t.Fatal(err)
	}
	if err := la.Commit(ctx, []store.CallbackMarkUpdate{
		{Entity: inv(3), FinishedAt: t1, RunID: uuid.NewString()},
		{Entity: inv(4), FinishedAt: t1, RunID: "not a uuid"},
	}); err == nil {
		t.Error("a commit with an invalid run id succeeded")
	}
	if _, ok, err := st.CallbackMark(ctx, "cb", "invoice", 3); err != nil || ok {
		t.Errorf("mark of invoice 3 after a failed commit: %v, %v; want none", ok, err)
	}
	lb, locked, marks, err = b.Lock(ctx, "cb", []store.CallbackEntity{inv(3), inv(4)})
	if err != nil || fmt.Sprint(locked) != "[true true]" || len(marks) != 0 {
		t.Fatalf("after a release and a failed commit: %v, marks %v, %v", locked, marks, err)
	}
	lb.Release()
}

// TestCallbackLockMarksAfterLock: a replica that takes an entity the moment
// another one commits its mark reads that mark. Replica A holds invoice 9 and
// commits a mark; replica B, trying all the while, either finds the entity busy
// or, once it gets it, reads A's mark. Reading the marks in the locking
// statement itself (whose snapshot predates the lock) fails this test within a
// few runs: B gets the lock just after A's commit but reads the mark before it.
// The database defaults to REPEATABLE READ, under which a transaction that did
// not ask for READ COMMITTED would read the marks from its locking statement's
// snapshot all the same.
func TestCallbackLockMarksAfterLock(t *testing.T) {
	t.Parallel()
	st := open(t)
	ctx := context.Background()
	if _, err := st.Pool().Exec(ctx, `DO $$ BEGIN
		EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = %L', current_database(), 'repeatable read');
	END $$`); err != nil {
		t.Fatal(err)
	}
	a, err := st.NewCallbackLocker(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := st.NewCallbackLocker(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	e := []store.CallbackEntity{{EntityType: "invoice", MagentoID: 9}}
	t1 := time.Date(2026, 4, 29, 10, 0, 0, 0, time.UTC)
	for round := range 20 {
		at := t1.Add(time.Duration(round) * time.Second)
		la, locked, _, err := a.Lock(ctx, "t1", e)
		if err != nil || !locked[0] {
			t.Fatalf("round %d: A cannot lock: %v, %v", round, locked, err)
		}
		done := make(chan error, 1)
		go func() {
			done <- la.Commit(ctx, []store.CallbackMarkUpdate{{Entity: e[0], FinishedAt: at, RunID: uuid.NewString()}})
		}()
		for {
			lb, locked, marks, err := b.Lock(ctx, "t1", e)
			if err != nil {
				t.Fatal(err)
			}
			lb.Release()
			if locked[0] {
				if !marks[e[0]].Equal(at) {
					t.Fatalf("round %d: B took the entity after A's commit but read mark %s, want %s", round, marks[e[0]], at)
				}
				break
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
