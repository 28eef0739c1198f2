package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/store"
)

func TestShopActivity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t)

	got, err := st.ShopActivity(ctx, "t1")
	if err != nil || got != (store.ShopActivity{}) {
		t.Fatalf("a tenant that never sent: %+v %v", got, err)
	}
	// An unknown tenant is left out rather than failing the others.
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	if err := st.TouchShops(ctx, map[string]time.Time{"t1": t0, "nobody": t0}); err != nil {
		t.Fatal(err)
	}
	// A replica flushing an older time does not move it back.
	if err := st.TouchShops(ctx, map[string]time.Time{"t1": t0.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.ShopActivity(ctx, "t1"); !got.LastWebhookAt.Equal(t0) {
		t.Fatalf("last webhook %s, want %s", got.LastWebhookAt, t0)
	}
	// A newer run counts even before the next flush.
	acc, err := st.AcceptWebhook(ctx, delivery("invoice.created:1"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	run, _ := st.Run(ctx, acc.RunID)
	if got, _ := st.ShopActivity(ctx, "t1"); !got.LastWebhookAt.Equal(run.CreatedAt) {
		t.Fatalf("last webhook %s, want the run's %s", got.LastWebhookAt, run.CreatedAt)
	}
}

func TestRecordUnauthorizedCountsWithinTheWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	rec := func(at time.Time) int {
		t.Helper()
		n, err := st.RecordUnauthorized(ctx, store.Refusal{TenantID: "t1", At: at, Reason: "signature does not match the tenant's outbound key",
			Window: 10 * time.Minute, Keep: 3})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := rec(now.Add(-20 * time.Minute)); n != 1 {
		t.Fatalf("first refusal counted %d", n)
	}
	// The first is outside the window of the next one.
	if n := rec(now.Add(-time.Minute)); n != 1 {
		t.Fatalf("old refusal still counted: %d", n)
	}
	rec(now.Add(-30 * time.Second))
	if n := rec(now); n != 3 {
		t.Fatalf("three within the window counted %d", n)
	}
	// At most Keep are kept.
	if n := rec(now.Add(time.Millisecond)); n != 3 {
		t.Fatalf("kept %d, want the threshold 3", n)
	}
	got, err := st.ShopActivity(ctx, "t1")
	if err != nil || got.UnauthorizedRecent != 3 || !got.LastUnauthorizedAt.Equal(now.Add(time.Millisecond)) ||
		got.LastUnauthorizedReason != "signature does not match the tenant's outbound key" {
		t.Fatalf("activity %+v %v", got, err)
	}
	// An accepted delivery after them: the shop signs correctly, they no
	// longer count.
	if err := st.TouchShops(ctx, map[string]time.Time{"t1": now.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.ShopActivity(ctx, "t1"); got.UnauthorizedRecent != 0 || got.LastUnauthorizedAt.IsZero() {
		t.Fatalf("after an accepted delivery: %+v", got)
	}
	if n := rec(now.Add(2 * time.Second)); n != 1 {
		t.Fatalf("a refusal after an accepted delivery counted %d, want 1", n)
	}
	if _, err := st.RecordUnauthorized(ctx, store.Refusal{TenantID: "t1", At: now, Keep: 0, Window: time.Minute}); err == nil {
		t.Fatal("Keep 0 accepted")
	}
}

// Refusals recorded at once by several replicas each count.
func TestRecordUnauthorizedConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t)
	now := time.Now().UTC()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := st.RecordUnauthorized(ctx, store.Refusal{TenantID: "t1", At: now.Add(time.Duration(i) * time.Millisecond),
				Reason: "r", Window: time.Hour, Keep: 50}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, _ := st.ShopActivity(ctx, "t1"); got.UnauthorizedRecent != 20 {
		t.Fatalf("counted %d of 20 concurrent refusals", got.UnauthorizedRecent)
	}
}

// The metrics' last-webhook time (TenantActivity) counts a delivery recorded
// by TouchShops, such as a repeat, that created no run.
func TestTenantActivityCountsRecordedDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t)
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond) // later than any run
	if err := st.TouchShops(ctx, map[string]time.Time{"t1": at}); err != nil {
		t.Fatal(err)
	}
	acts, err := st.TenantActivity(ctx)
	if err != nil || len(acts) != 1 || !acts[0].LastRunAt.Equal(at) {
		t.Fatalf("activity %+v %v, want the last delivery at %s", acts, err, at)
	}
}
