package sagewriter_test

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/store"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// Acceptance (issue 5): with 10 % commit-then-drop and 10 % 5xx, 2,000
// invoices across 20 tenants end as exactly 2,000 Sage invoices (and exactly
// one contact per customer), no duplicates, every run terminal.
func TestAcceptanceFaultsNoDuplicates(t *testing.T) {
	t.Parallel()
	const tenants, perTenant, customers = 20, 100, 10
	f := newFleet(t, sagesim.Config{Seed: 11})
	ids := f.addTenants("shop", tenants)
	if err := f.sim.SetFaults(sagesim.Faults{CommitThenDropRate: 0.10, ServerErrorRate: 0.10}); err != nil {
		t.Fatal(err)
	}
	cfg := f.config()
	cfg.Budget.BusinessPerMinute, cfg.Budget.BusinessBurst = 60_000, 10
	f.start(cfg, f.st, true)

	var runs []string
	for _, tenant := range ids {
		rs := f.newRuns(tenant, "invoice.created", perTenant)
		for i, run := range rs {
			f.publish(f.invoiceWrite(tenant, run, i+1, i%customers+1))
		}
		runs = append(runs, rs...)
	}
	counts := f.waitTerminal(runs)
	if counts[store.RunSucceeded] != tenants*perTenant {
		t.Fatalf("runs %v, want all %d succeeded", counts, tenants*perTenant)
	}
	total := 0
	for _, tenant := range ids {
		b := f.businessOf(tenant)
		inv, con := f.sim.Invoices(b), f.sim.Contacts(b)
		seen := map[string]bool{}
		for _, i := range inv {
			if seen[i.Reference] {
				t.Errorf("%s: duplicate invoice %s", tenant, i.Reference)
			}
			seen[i.Reference] = true
		}
		if len(inv) != perTenant || len(con) != customers {
			t.Errorf("%s: %d invoices and %d contacts in Sage, want %d and %d", tenant, len(inv), len(con), perTenant, customers)
		}
		total += len(inv)
	}
	if total != tenants*perTenant || f.deadLetters() != 0 {
		t.Fatalf("%d invoices in Sage, %d dead letters", total, f.deadLetters())
	}
	drops, fives := f.sim.CallCount("POST /v3.1/sales_invoices", 0), f.sim.CallCount("POST /v3.1/sales_invoices", 500)
	t.Logf("2,000 invoices: %d invoice POSTs dropped after commit and %d answered 500 were resolved without duplicates", drops, fives)
	if drops == 0 || fives == 0 {
		t.Fatal("the faults did not fire")
	}
}

// A refresh token revoked mid-run: the binding flips to token_revoked, nothing
// is dead-lettered, and after re-authorisation every pending write syncs.
func TestRevokedMidRunResumesAfterReauthorisation(t *testing.T) {
	t.Parallel()
	const n = 60
	f := newFleet(t, sagesim.Config{Seed: 3})
	tenant := f.addTenants("rev", 1)[0]
	cfg := f.config()
	cfg.Budget.BusinessPerMinute, cfg.Budget.BusinessBurst = 1200, 1 // 20 calls/s: the run takes a few seconds
	cfg.PauseDelay = 300 * time.Millisecond
	cfg.MaxDeliver = 3 // held writes cycle through requeues, never to the DLQ
	f.start(cfg, f.st, true)
	runs := f.newRuns(tenant, "invoice.created", n)
	for i, run := range runs {
		f.publish(f.invoiceWrite(tenant, run, i+1, 1))
	}
	ctx := t.Context()
	devtest.Eventually(t, "the first 10 invoices in Sage", func() bool { return len(f.sim.Invoices(f.businessOf(tenant))) >= 10 })
	// The user disconnects the app in Sage: every refresh token dies and the
	// current access token stops working.
	f.sim.RevokeRefreshTokens()
	f.sim.ExpireAccessTokens()
	devtest.Eventually(t, "the binding is token_revoked", func() bool {
		tn, err := f.st.Tenant(ctx, tenant)
		return err == nil && tn.Binding.Status == store.StatusTokenRevoked
	})
	written := len(f.sim.Invoices(f.businessOf(tenant)))
	if written >= n {
		t.Fatal("everything was written before the revocation took effect")
	}
	// Held for several pause cycles: two writes have each had more than
	// MaxDeliver deliveries (the bus requeues a held write as a new message
	// on its last delivery, and nothing else publishes to SAGE now), yet
	// nothing reaches Sage, nothing is dead-lettered.
	requeuedFrom := f.streamLastSeq(bus.StreamSage)
	devtest.Eventually(t, "two held writes requeued after MaxDeliver deliveries", func() bool {
		return f.streamLastSeq(bus.StreamSage) >= requeuedFrom+2
	})
	if got := len(f.sim.Invoices(f.businessOf(tenant))); got != written || f.deadLetters() != 0 {
		t.Fatalf("while revoked: %d invoices (was %d), %d dead letters", got, written, f.deadLetters())
	}
	var pending int
	if err := f.st.Pool().QueryRow(ctx, `SELECT count(*) FROM sync_runs WHERE sync_run_id = ANY($1::uuid[]) AND status IN ('pending','running')`, runs).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending == 0 {
		t.Fatal("no write is waiting")
	}
	t.Logf("revoked after %d of %d invoices; %d writes held", written, n, pending)

	f.authorise(tenant) // the operator reconnects Sage
	counts := f.waitTerminal(runs)
	if counts[store.RunSucceeded] != n || len(f.sim.Invoices(f.businessOf(tenant))) != n || f.deadLetters() != 0 {
		t.Fatalf("after re-authorising: runs %v, %d invoices, %d dead letters", counts, len(f.sim.Invoices(f.businessOf(tenant))), f.deadLetters())
	}
}

// tokenCallWatch wraps a transport and measures how many token-endpoint calls
// are in flight at once, holding each open long enough for refresh windows to
// overlap.
type tokenCallWatch struct {
	base     http.RoundTripper
	hold     time.Duration
	inflight atomic.Int32
	max      atomic.Int32
	calls    atomic.Int32
}

func (w *tokenCallWatch) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path != "/token" {
		return w.base.RoundTrip(r)
	}
	w.calls.Add(1)
	n := w.inflight.Add(1)
	defer w.inflight.Add(-1)
	for {
		m := w.max.Load()
		if n <= m || w.max.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(w.hold) // the time held is the window in which an overlapping call would be seen
	return w.base.RoundTrip(r)
}

// Two writer processes (two Services, each with its own connection pool, as two
// replicas have) against one binding never refresh concurrently: their
// token-endpoint calls never overlap although every refresh window does, and
// Sage never sees a reused refresh token.
func TestTwoWritersNeverRefreshConcurrently(t *testing.T) {
	t.Parallel()
	f := newFleet(t, sagesim.Config{Seed: 5})
	tenant := f.addTenants("two", 1)[0]
	watch := &tokenCallWatch{base: f.srv.Client().Transport, hold: 150 * time.Millisecond}
	other, err := store.Open(t.Context(), f.dbURL, f.sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	var writers []*sagewriter.Service
	for _, st := range []*store.Store{f.st, other} {
		cfg := f.config()
		cfg.HTTPClient = &http.Client{Transport: watch}
		cfg.KeepAliveRotatedBefore = time.Millisecond // every binding is "idle": each pass wants a refresh
		writers = append(writers, f.start(cfg, st, true))
	}
	base := f.sim.CallCount("POST /token", -1)
	ctx := t.Context()
	var runs []string
	for round := range 5 {
		// Sage expires the access token; the store still believes it valid,
		// so writes of both writers meet a 401 and refresh, while both
		// keep-alive passes refresh at the same moment.
		f.sim.ExpireAccessTokens()
		rs := f.newRuns(tenant, "invoice.created", 4)
		for i, run := range rs {
			f.publish(f.invoiceWrite(tenant, run, round*10+i+1, 1))
		}
		runs = append(runs, rs...)
		var wg sync.WaitGroup
		for _, w := range writers {
			wg.Go(func() {
				if _, err := w.KeepAlivePass(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		for _, st := range []*store.Store{f.st, other} {
			wg.Go(func() {
				ts := sagewriter.NewTokenSource(st, f.oauth, tenant)
				if err := ts.ForceRefresh(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		f.waitTerminal(rs)
	}
	counts := f.waitTerminal(runs)
	if counts[store.RunSucceeded] != len(runs) {
		t.Fatalf("runs %v", counts)
	}
	if m := watch.max.Load(); m != 1 {
		t.Fatalf("%d token requests were in flight at once; refreshes must be serialised", m)
	}
	if bad := f.sim.CallCount("POST /token", 400); bad != 0 {
		t.Fatalf("%d token requests refused: a refresh token was used twice", bad)
	}
	tn, err := f.st.Tenant(ctx, tenant)
	if err != nil || tn.Binding.Status != store.StatusActive {
		t.Fatalf("binding %+v %v", tn.Binding, err)
	}
	t.Logf("%d token requests (%d through the watch), never two at once", f.sim.CallCount("POST /token", -1)-base, watch.calls.Load())
}

// dropThenBlind loses the answer of the first invoice POST (the invoice is
// created) and fails every reference lookup until see is closed.
type dropThenBlind struct {
	base    http.RoundTripper
	dropped atomic.Bool
	blind   atomic.Bool
	lookups atomic.Int32
}

func (d *dropThenBlind) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && r.URL.Query().Get("search") != "" && d.blind.Load() {
		d.lookups.Add(1)
		return nil, errors.New("lookup blinded by the test")
	}
	resp, err := d.base.RoundTrip(r)
	if err == nil && r.Method == http.MethodPost && r.URL.Path == "/v3.1/sales_invoices" && d.dropped.CompareAndSwap(false, true) {
		resp.Body.Close()
		return nil, errors.New("connection reset after the request was sent (test)")
	}
	return resp, err
}

// An ambiguous create that stays unresolved past Sage's 7-day idempotency
// window is still not duplicated: the retry looks the document up by reference
// before it POSTs again.
func TestAmbiguousCreateResolvedAfterIdempotencyWindow(t *testing.T) {
	t.Parallel()
	f := newFleet(t, sagesim.Config{Seed: 9})
	tenant := f.addTenants("week", 1)[0]
	tr := &dropThenBlind{base: f.srv.Client().Transport}
	tr.blind.Store(true)
	cfg := f.config()
	cfg.HTTPClient = &http.Client{Transport: tr}
	cfg.RetryBase, cfg.RetryCap = 100*time.Millisecond, 2*time.Second
	cfg.MaxDeliver = 20
	f.start(cfg, f.st, false)
	run := f.newRuns(tenant, "invoice.created", 1)[0]
	f.publish(f.invoiceWrite(tenant, run, 1, 1))
	devtest.Eventually(t, "the create is ambiguous and lookups fail", func() bool { return tr.lookups.Load() >= 2 })
	if n := len(f.sim.Invoices(f.businessOf(tenant))); n != 1 {
		t.Fatalf("%d invoices after the dropped answer, want the one created", n)
	}
	// A week and a day later Sage has forgotten the idempotency_id; a blind
	// re-POST would create a second invoice.
	f.sim.Advance(8 * 24 * time.Hour)
	tr.blind.Store(false)
	counts := f.waitTerminal([]string{run})
	if counts[store.RunSucceeded] != 1 {
		t.Fatalf("run %v", counts)
	}
	if n, posts := len(f.sim.Invoices(f.businessOf(tenant))), f.sim.CallCount("POST /v3.1/sales_invoices", -1); n != 1 || posts != 1 {
		t.Fatalf("%d invoices, %d invoice POSTs: the retry must look before it creates", n, posts)
	}
	var outcomes []string
	for _, a := range mustAttempts(t, f.st, run) {
		outcomes = append(outcomes, fmt.Sprintf("%s %s %s", a.Method, a.Path, a.Outcome))
	}
	t.Logf("attempts: %v", outcomes)
}

func mustAttempts(t *testing.T, st *store.Store, run string) []store.Attempt {
	t.Helper()
	a, err := st.Attempts(t.Context(), run)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A 429 is back-pressure: the write is held (no delivery spent towards a dead
// letter even with MaxDeliver 2) and the business slows down until Sage lets it
// through again.
func TestThrottlingIsBackPressureNotFailure(t *testing.T) {
	t.Parallel()
	const n = 10
	f := newFleet(t, sagesim.Config{Seed: 13})
	tenant := f.addTenants("busy", 1)[0]
	if err := f.sim.SetFaults(sagesim.Faults{RateLimitPerMinute: 6}); err != nil {
		t.Fatal(err)
	}
	cfg := f.config()
	cfg.MaxDeliver = 2
	cfg.Budget.BusinessPerMinute, cfg.Budget.BusinessBurst = 6000, 5 // faster than Sage allows
	cfg.Budget.ThrottleBase, cfg.Budget.ThrottleCap = 50*time.Millisecond, 300*time.Millisecond
	f.start(cfg, f.st, true)
	runs := f.newRuns(tenant, "invoice.created", n)
	for i, run := range runs {
		f.publish(f.invoiceWrite(tenant, run, i+1, i+1))
	}
	seen, open := 0, 0
	devtest.Eventually(t, "every run to finish", func() bool {
		if err := f.st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM sync_runs WHERE sync_run_id = ANY($1::uuid[]) AND status IN ('pending','running')`, runs).Scan(&open); err != nil {
			t.Fatal(err)
		}
		if open == 0 {
			return true
		}
		// Each time Sage throttled, a simulated minute passes and its window
		// frees up.
		if got := f.throttled(); got > seen {
			seen = got
			f.sim.Advance(61 * time.Second)
		}
		return false
	}, devtest.Explain(func() string { return fmt.Sprintf("%d runs still open", open) }))
	counts := f.waitTerminal(runs)
	if counts[store.RunSucceeded] != n || f.deadLetters() != 0 || seen == 0 {
		t.Fatalf("runs %v, %d dead letters, %d 429s", counts, f.deadLetters(), seen)
	}
	if inv := len(f.sim.Invoices(f.businessOf(tenant))); inv != n {
		t.Fatalf("%d invoices", inv)
	}
	t.Logf("%d writes through %d 429s, none dead-lettered", n, seen)
}

func (f *fleet) throttled() int {
	n := 0
	for _, c := range f.sim.Calls() {
		if c.Status == http.StatusTooManyRequests {
			n += c.Count
		}
	}
	return n
}
