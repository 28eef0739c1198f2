package ingest_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	"github.com/ledgersync/ledger/services/ingest"
)

// forgetWatch is the store with every retention pass's age recorded.
type forgetWatch struct {
	*store.Store
	mu   sync.Mutex
	ages []time.Duration
}

func (w *forgetWatch) ForgetWebhookKeys(ctx context.Context, age time.Duration) (int64, error) {
	w.mu.Lock()
	w.ages = append(w.ages, age)
	w.mu.Unlock()
	return w.Store.ForgetWebhookKeys(ctx, age)
}

func (w *forgetWatch) passes() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.ages...)
}

// TestKeyRetention: the retention job runs on its timer and forgets the keys
// older than the dedupe window; a key inside it stays, and its repeat is still
// refused (202 with the first run, nothing published), while the repeat of a
// forgotten key is a new delivery.
func TestKeyRetention(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	ctx := t.Context()
	send := func(key string) string {
		t.Helper()
		r := f.webhook(t, tenantID, "invoice.created", key, token(t), envelope)
		wantCode(t, r, http.StatusAccepted)
		id, _ := r.json(t)["sync_run_id"].(string)
		return id
	}
	oldRun, freshRun := send("invoice.created:1"), send("invoice.created:2")
	// The mapper takes both runs (a pending run's key is kept: its event may
	// never have been published).
	for _, run := range []string{oldRun, freshRun} {
		if _, err := f.st.StartRunFrom(ctx, run, 1); err != nil {
			t.Fatal(err)
		}
	}
	// Eight days pass for the first key (the default window is 7).
	if _, err := f.st.Pool().Exec(ctx, `UPDATE webhook_keys SET created_at = now() - interval '8 days'
		WHERE idempotency_key = 'invoice.created:1'`); err != nil {
		t.Fatal(err)
	}
	count := func(key string) int {
		var n int
		if err := f.st.Pool().QueryRow(ctx, `SELECT count(*) FROM webhook_keys WHERE idempotency_key = $1`, key).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	watch := &forgetWatch{Store: f.st}
	svc, err := ingest.New(ingest.Config{KeyRetentionEvery: time.Second}, watch, f.js, telemetry.Discard())
	if err != nil {
		t.Fatal(err)
	}
	jobCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.RunKeyRetention(jobCtx) }()
	devtest.Eventually(t, "two retention passes", func() bool { return len(watch.passes()) >= 2 })
	stop()
	if err := <-done; err != nil {
		t.Fatalf("RunKeyRetention: %v", err)
	}
	for _, age := range watch.passes() {
		if age != ingest.DefaultDedupWindow {
			t.Fatalf("a pass forgot keys older than %s, want the dedupe window %s", age, ingest.DefaultDedupWindow)
		}
	}
	if count("invoice.created:1") != 0 || count("invoice.created:2") != 1 {
		t.Fatalf("keys left: old %d, fresh %d; want 0 and 1", count("invoice.created:1"), count("invoice.created:2"))
	}

	if got := send("invoice.created:2"); got != freshRun {
		t.Fatalf("repeat inside the window answered run %s, want the first run %s", got, freshRun)
	}
	if n := len(f.outbox(t)); n != 2 {
		t.Fatalf("%d messages on OUTBOX after a refused repeat, want 2", n)
	}
	if got := send("invoice.created:1"); got == oldRun || got == "" {
		t.Fatalf("the forgotten key's repeat answered run %q (first run %s): want a new run", got, oldRun)
	}
	if n := len(f.outbox(t)); n != 3 {
		t.Fatalf("%d messages on OUTBOX, want 3", n)
	}
}
