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

	la, locked, err := a.Lock(ctx, "cb", []store.CallbackEntity{inv(1), inv(2)})
	if err != nil || fmt.Sprint(locked) != "[true true]" {
		t.Fatalf("first lock: %v, %v", locked, err)
	}
	lb, locked, err := b.Lock(ctx, "cb", []store.CallbackEntity{inv(2), inv(3), {EntityType: "creditmemo", MagentoID: 2}})
	if err != nil || fmt.Sprint(locked) != "[false true true]" {
		t.Fatalf("second lock: %v, %v; want invoice 2 busy, the rest free", locked, err)
	}
	lb.Release()

	t1 := time.Date(2026, 4, 29, 10, 0, 0, 123456000, time.UTC)
	if err := la.SetMarks(ctx, []store.CallbackMarkUpdate{
		{Entity: inv(1), FinishedAt: t1, RunID: uuid.NewString()},
		{Entity: inv(2), FinishedAt: t1.Add(time.Hour), RunID: uuid.NewString()},
	}); err != nil {
		t.Fatal(err)
	}
	// Marks only move forward.
	if err := la.SetMarks(ctx, []store.CallbackMarkUpdate{{Entity: inv(2), FinishedAt: t1, RunID: uuid.NewString()}}); err != nil {
		t.Fatal(err)
	}
	marks, err := la.Marks(ctx, []store.CallbackEntity{inv(1), inv(2), inv(3)})
	if err != nil || len(marks) != 2 || !marks[inv(1)].Equal(t1) || !marks[inv(2)].Equal(t1.Add(time.Hour)) {
		t.Fatalf("marks %v, %v", marks, err)
	}
	if at, ok, err := st.CallbackMark(ctx, "cb", "invoice", 2); err != nil || !ok || !at.Equal(t1.Add(time.Hour)) {
		t.Errorf("CallbackMark = %s, %v, %v", at, ok, err)
	}
	la.Release()
	la.Release() // idempotent
	if _, err := la.Marks(ctx, nil); err == nil {
		t.Error("a released lock still reads marks")
	}

	lb, locked, err = b.Lock(ctx, "cb", []store.CallbackEntity{inv(1), inv(2)})
	if err != nil || fmt.Sprint(locked) != "[true true]" {
		t.Fatalf("after release: %v, %v", locked, err)
	}
	lb.Release()
}
