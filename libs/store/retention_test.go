package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/store"
)

// TestForgetWebhookKeysKeepsTheWindow: keys older than the dedupe window go
// (but one whose run is still pending: its event may never have been
// published), keys inside it stay, and a repeat inside the window is still
// refused.
func TestForgetWebhookKeysKeepsTheWindow(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbURL := devtest.Database(t)
	st := openAt(t, dbURL)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	const window = 7 * 24 * time.Hour

	runs := map[string]string{}
	for _, key := range []string{"old-consumed", "old-pending", "old-failed", "fresh"} {
		acc, err := st.AcceptWebhook(ctx, delivery(key), window)
		if err != nil || acc.Duplicate {
			t.Fatalf("%s: %+v %v", key, acc, err)
		}
		runs[key] = acc.RunID
	}
	for _, key := range []string{"old-consumed", "fresh"} { // the mapper took them
		if _, err := st.StartRunFrom(ctx, runs[key], 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.FinishRun(ctx, store.Outcome{RunID: runs["old-failed"], Status: store.RunFailed,
		ErrorClass: "validation", ErrorCode: "x", Message: "x"}); err != nil {
		t.Fatal(err)
	}
	// Eight days pass for three of them.
	if _, err := pool.Exec(ctx, `UPDATE webhook_keys SET created_at = now() - interval '8 days'
		WHERE idempotency_key LIKE 'old-%'`); err != nil {
		t.Fatal(err)
	}

	n, err := st.ForgetWebhookKeys(ctx, window)
	if err != nil || n != 2 {
		t.Fatalf("ForgetWebhookKeys = %d, %v; want the 2 old keys that no run needs", n, err)
	}
	if got, want := keys(t, pool), []string{"fresh", "old-pending"}; !slices.Equal(got, want) {
		t.Fatalf("keys left %v, want %v", got, want)
	}
	if n, err := st.ForgetWebhookKeys(ctx, window); err != nil || n != 0 {
		t.Fatalf("a second pass deleted %d, %v", n, err)
	}

	// A repeat inside the window is still refused.
	if acc, err := st.AcceptWebhook(ctx, delivery("fresh"), window); err != nil || !acc.Duplicate || acc.RunID != runs["fresh"] {
		t.Fatalf("repeat of a key inside the window: %+v %v", acc, err)
	}
	// The kept pending key still returns its run to publish.
	if acc, err := st.AcceptWebhook(ctx, delivery("old-pending"), window); err != nil || acc.Duplicate ||
		acc.RunID != runs["old-pending"] {
		t.Fatalf("pending key: %+v %v", acc, err)
	}
	// A forgotten key is a new delivery.
	if acc, err := st.AcceptWebhook(ctx, delivery("old-consumed"), window); err != nil || acc.Duplicate || acc.RunID == runs["old-consumed"] {
		t.Fatalf("forgotten key: %+v %v", acc, err)
	}
}

// TestForgetWebhookKeysInBatches deletes more keys than one batch holds.
func TestForgetWebhookKeysInBatches(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbURL := devtest.Database(t)
	st := openAt(t, dbURL)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `INSERT INTO webhook_keys (tenant_id, idempotency_key, sync_run_id, published_at, created_at)
		SELECT 't1', 'k' || g, gen_random_uuid(), now(), now() - interval '30 days' FROM generate_series(1, 12001) g`); err != nil {
		t.Fatal(err)
	}
	if n, err := st.ForgetWebhookKeys(ctx, time.Hour); err != nil || n != 12001 {
		t.Fatalf("ForgetWebhookKeys = %d, %v; want 12001", n, err)
	}
	if got := keys(t, pool); len(got) != 0 {
		t.Fatalf("%d keys left", len(got))
	}
}

func keys(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT idempotency_key FROM webhook_keys ORDER BY idempotency_key`)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestXrefDigestAndRunChange: the digest of the body last written travels
// with a link and is cleared by a relink; a run records what it did in Sage.
func TestXrefDigestAndRunChange(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := open(t)
	x := store.Xref{TenantID: "t1", Kind: "contact", MagentoKey: "M1", Currency: "GBP", SageID: "S1", Reference: "M1", Digest: "d1"}
	if err := st.PutXref(ctx, x); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Xref(ctx, "t1", "contact", "M1", "GBP"); err != nil || got != x {
		t.Fatalf("xref %+v, %v; want %+v", got, err, x)
	}
	if ok, err := st.SetXrefDigest(ctx, "t1", "contact", "M1", "GBP", "S1", "d2"); err != nil || !ok {
		t.Fatalf("SetXrefDigest = %v, %v", ok, err)
	}
	// A relink to another document (an operator's) forgets the digest, and a
	// digest for the old document no longer lands.
	if err := st.PutXref(ctx, store.Xref{TenantID: "t1", Kind: "contact", MagentoKey: "M1", Currency: "GBP", SageID: "S2"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.SetXrefDigest(ctx, "t1", "contact", "M1", "GBP", "S1", "d3"); err != nil || ok {
		t.Fatalf("SetXrefDigest for the old document = %v, %v", ok, err)
	}
	if got, err := st.Xref(ctx, "t1", "contact", "M1", "GBP"); err != nil || got.SageID != "S2" || got.Digest != "" {
		t.Fatalf("after relink %+v, %v", got, err)
	}

	acc, err := st.AcceptWebhook(ctx, delivery("customer.upserted:1"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r, err := st.FinishRun(ctx, store.Outcome{RunID: acc.RunID, Status: store.RunSucceeded, SageID: "S2", Change: store.ChangeUpdated})
	if err != nil || r.Change != store.ChangeUpdated {
		t.Fatalf("succeeded run: %+v %v", r, err)
	}
	if r, err = st.ResetRun(ctx, acc.RunID); err != nil || r.Change != "" {
		t.Fatalf("reset run: change %q, %v", r.Change, err)
	}
	// Only a succeeded run has a change.
	if r, err = st.FinishRun(ctx, store.Outcome{RunID: acc.RunID, Status: store.RunFailed, Change: store.ChangeUpdated,
		ErrorClass: "provider", ErrorCode: "x", Message: "x"}); err != nil || r.Change != "" {
		t.Fatalf("failed run: change %q, %v", r.Change, err)
	}
}
