package store_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
)

func TestMain(m *testing.M) { devtest.Main(m) }

func open(t *testing.T) *store.Store {
	t.Helper()
	return openAt(t, devtest.Database(t))
}

// openAt is open on the database at dbURL.
func openAt(t *testing.T, dbURL string) *store.Store {
	t.Helper()
	sealer, _ := secrets.NewRandomKeyRing()
	st, err := store.Open(context.Background(), dbURL, sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.CreateTenant(context.Background(), "t1", "Tenant one"); err != nil {
		t.Fatal(err)
	}
	return st
}

func delivery(key string) store.Delivery {
	return store.Delivery{TenantID: "t1", IdempotencyKey: key, Event: "invoice.created", EntityType: "invoice",
		MagentoEntityID: 42, WebsiteID: 1, StoreID: 2, OccurredAt: "2026-11-28T00:00:00Z", Payload: []byte(`{"paid":false}`)}
}

func TestAcceptWebhookDecidesRepeats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t)
	first, err := st.AcceptWebhook(ctx, delivery("invoice.created:42"), time.Hour)
	if err != nil || first.Duplicate || first.RunID == "" {
		t.Fatalf("first delivery: %+v %v", first, err)
	}
	// Still pending (never published, or not consumed yet): the same run,
	// to publish again (JetStream keeps one copy of a publish it has seen).
	again, _ := st.AcceptWebhook(ctx, delivery("invoice.created:42"), time.Hour)
	if again.RunID != first.RunID || again.Duplicate {
		t.Fatalf("a pending run's key must return its run to publish again: %+v", again)
	}
	// Consumed (the mapper started it): a repeat.
	if _, err := st.StartRunFrom(ctx, first.RunID, 1); err != nil {
		t.Fatal(err)
	}
	dup, _ := st.AcceptWebhook(ctx, delivery("invoice.created:42"), time.Hour)
	if !dup.Duplicate || dup.RunID != first.RunID {
		t.Fatalf("a running run must be a duplicate: %+v", dup)
	}
	run, err := st.Run(ctx, first.RunID)
	if err != nil || run.WebsiteID != 1 || run.StoreID != 2 || string(run.Payload) != `{"paid": false}` {
		t.Fatalf("run keeps its envelope: %+v %v", run, err)
	}
	// A failed run: the shop's re-send is a new attempt.
	if _, err := st.FinishRun(ctx, store.Outcome{RunID: first.RunID, Status: store.RunFailed, ErrorClass: "validation"}); err != nil {
		t.Fatal(err)
	}
	retry, _ := st.AcceptWebhook(ctx, delivery("invoice.created:42"), time.Hour)
	if retry.Duplicate || retry.RunID == first.RunID {
		t.Fatalf("repeat of a failed run must start a new run: %+v", retry)
	}
	// Past the window a pending run is still the one to publish; a finished
	// one is forgotten.
	if pending, _ := st.AcceptWebhook(ctx, delivery("invoice.created:42"), time.Nanosecond); pending.Duplicate || pending.RunID != retry.RunID {
		t.Fatalf("a pending run's key past the window must return that run: %+v", pending)
	}
	if _, err := st.FinishRun(ctx, store.Outcome{RunID: retry.RunID, Status: store.RunSucceeded}); err != nil {
		t.Fatal(err)
	}
	expired, _ := st.AcceptWebhook(ctx, delivery("invoice.created:42"), time.Nanosecond)
	if expired.Duplicate || expired.RunID == retry.RunID {
		t.Fatalf("a key past the window starts a new run: %+v", expired)
	}
}

func TestAcceptWebhookConcurrentDeliveriesShareOneRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t)
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acc, err := st.AcceptWebhook(ctx, delivery("customer.upserted:7"), time.Hour)
			if err != nil {
				t.Error(err)
			}
			ids[i] = acc.RunID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent deliveries got different runs: %v", ids)
		}
	}
}

func TestRunLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t)
	acc, _ := st.AcceptWebhook(ctx, delivery("invoice.created:1"), time.Hour)
	r, err := st.StartRun(ctx, acc.RunID)
	if err != nil || r.Status != store.RunRunning || r.Attempts != 1 {
		t.Fatalf("start: %+v %v", r, err)
	}
	done, err := st.FinishRun(ctx, store.Outcome{RunID: acc.RunID, Status: store.RunSucceeded, SageID: "abc"})
	if err != nil || done.FinishedAt == nil {
		t.Fatal(err)
	}
	// A redelivery finishing the same way keeps the first finished_at.
	again, _ := st.FinishRun(ctx, store.Outcome{RunID: acc.RunID, Status: store.RunSucceeded, SageID: "abc"})
	if !again.FinishedAt.Equal(*done.FinishedAt) {
		t.Fatalf("finished_at moved: %v → %v", done.FinishedAt, again.FinishedAt)
	}
	// A succeeded run is not restarted by a redelivery.
	if r, _ := st.StartRun(ctx, acc.RunID); r.Status != store.RunSucceeded || r.Attempts != 1 {
		t.Fatalf("succeeded run restarted: %+v", r)
	}
	// A failed run restarts (operator replay).
	_, _ = st.FinishRun(ctx, store.Outcome{RunID: acc.RunID, Status: store.RunFailed})
	if r, _ := st.StartRun(ctx, acc.RunID); r.Status != store.RunRunning || r.FinishedAt != nil {
		t.Fatalf("failed run not restarted: %+v", r)
	}
	// The mapper's start: a redelivery of the message that started the
	// attempt does not restart a failed run; a new message does.
	if r, _ := st.StartRunFrom(ctx, acc.RunID, 7); r.Status != store.RunRunning {
		t.Fatalf("StartRunFrom of a running run: %+v", r)
	}
	_, _ = st.FinishRun(ctx, store.Outcome{RunID: acc.RunID, Status: store.RunFailed})
	if r, _ := st.StartRunFrom(ctx, acc.RunID, 7); r.Status != store.RunFailed || r.Attempts != 3 {
		t.Fatalf("a redelivery of the same message restarted the failed run: %+v", r)
	}
	if r, _ := st.StartRunFrom(ctx, acc.RunID, 8); r.Status != store.RunRunning || r.Attempts != 4 || r.FinishedAt != nil {
		t.Fatalf("a new message did not restart the failed run: %+v", r)
	}
	if _, err := st.FinishRun(ctx, store.Outcome{RunID: acc.RunID, Status: "running"}); err == nil {
		t.Fatal("running is not a terminal status")
	}
	if _, err := st.Run(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	latest, err := st.LatestRun(ctx, "t1", "invoice", 42)
	if err != nil || latest.ID != acc.RunID {
		t.Fatalf("latest run: %+v %v", latest, err)
	}
}

func TestRefreshTokensRunsOnceUnderContention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A connection for each of the five callers and one for the test's own
	// look at the locks: with the default pool (4) some callers would queue
	// for a connection instead of the lock.
	dbURL, err := url.Parse(devtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	q := dbURL.Query()
	q.Set("pool_max_conns", "6")
	dbURL.RawQuery = q.Encode()
	st := openAt(t, dbURL.String())
	if err := st.SaveTokens(ctx, "t1", store.Tokens{Access: "a0", Refresh: "r0",
		AccessExpiresAt: time.Now(), RefreshExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	release := make(chan struct{})
	need := func(cur store.Tokens) bool { return time.Until(cur.AccessExpiresAt) < time.Minute }
	refresh := func(_ context.Context, cur store.Tokens) (store.Tokens, error) {
		calls.Add(1)
		<-release // hold the lock until the others queue for it
		return store.Tokens{Access: "a1", Refresh: "r1", AccessExpiresAt: time.Now().Add(5 * time.Minute),
			RefreshExpiresAt: time.Now().Add(time.Hour)}, nil
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := st.RefreshTokens(ctx, "t1", need, refresh)
			if err != nil || got.Access != "a1" || got.Refresh != "r1" {
				t.Errorf("got %+v %v", got, err)
			}
		}()
	}
	devtest.Eventually(t, "one refresh holding the lock while the four other callers wait for it", func() bool {
		if calls.Load() > 1 {
			return true // no lock: the check below says so
		}
		var waiting int
		err := st.Pool().QueryRow(t.Context(),
			`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting)
		return err == nil && calls.Load() == 1 && waiting == 4
	})
	releaseOnce.Do(func() { close(release) })
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("refresh ran %d times, want 1", n)
	}
	got, _ := st.Tokens(ctx, "t1")
	if got.Refresh != "r1" {
		t.Fatalf("rotated refresh token not stored: %+v", got)
	}
}

func TestBindingsXrefAndMarks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t)
	if err := st.SetMagentoPaired(ctx, "t1", "https://shop.example", "byte8_lk_secret"); err != nil {
		t.Fatal(err)
	}
	tn, _ := st.Tenant(ctx, "t1")
	if tn.Binding.APIKey != "byte8_lk_secret" || tn.Binding.MagentoConnectionStatus != store.StatusActive {
		t.Fatalf("binding: %+v", tn.Binding)
	}
	var raw []byte
	if err := st.Pool().QueryRow(ctx, `SELECT api_key_sealed FROM bindings WHERE tenant_id = 't1'`).Scan(&raw); err != nil || string(raw) == "byte8_lk_secret" {
		t.Fatalf("api key must be sealed at rest: %q %v", raw, err)
	}
	if err := st.SetMagentoStatus(ctx, "t1", store.StatusRevoked); err != nil {
		t.Fatal(err)
	}
	if tn, _ := st.Tenant(ctx, "t1"); tn.Binding.APIKey != "" {
		t.Fatal("revoking must forget the api key")
	}
	if _, err := st.Xref(ctx, "t1", "contact", "M1", "GBP"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	_ = st.PutXref(ctx, store.Xref{TenantID: "t1", Kind: "contact", MagentoKey: "M1", Currency: "GBP", SageID: "s1", Reference: "M1"})
	if x, err := st.Xref(ctx, "t1", "contact", "M1", "GBP"); err != nil || x.SageID != "s1" {
		t.Fatalf("xref: %+v %v", x, err)
	}
	_ = st.PutXref(ctx, store.Xref{TenantID: "t1", Kind: "contact", MagentoKey: "M2", Currency: "", SageID: "s2", Reference: "M2", Digest: "d2"})
	xs, err := st.Xrefs(ctx, "t1", []store.XrefKey{{"contact", "M1", "GBP"}, {"contact", "M2", ""}, {"contact", "M1", "EUR"}, {"contact", "M3", ""}})
	if err != nil || len(xs) != 2 || xs[store.XrefKey{"contact", "M1", "GBP"}].SageID != "s1" ||
		xs[store.XrefKey{"contact", "M2", ""}] != (store.Xref{TenantID: "t1", Kind: "contact", MagentoKey: "M2", SageID: "s2", Reference: "M2", Digest: "d2"}) {
		t.Fatalf("xrefs: %+v %v", xs, err)
	}
	if xs, err := st.Xrefs(ctx, "t2", []store.XrefKey{{"contact", "M1", "GBP"}}); err != nil || len(xs) != 0 {
		t.Fatalf("another tenant's links must not show: %+v %v", xs, err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	run := "11111111-1111-1111-1111-111111111111"
	_ = st.SetCallbackMark(ctx, "t1", "invoice", 1, now, run)
	_ = st.SetCallbackMark(ctx, "t1", "invoice", 1, now.Add(-time.Hour), run) // older: ignored
	if got, ok, _ := st.CallbackMark(ctx, "t1", "invoice", 1); !ok || !got.Equal(now) {
		t.Fatalf("mark moved backwards: %v", got)
	}
	if err := st.SetCallbackTransport(ctx, "t1", "grpc", ""); err == nil {
		t.Fatal("grpc transport without a target must be refused")
	}
}
