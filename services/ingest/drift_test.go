package ingest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	"github.com/ledgersync/ledger/services/ingest"
)

// otherKey is the api key a drifted shop signs with: it was paired again
// with a code Ledger never stored.
const otherKey = "byte8_lk_the_shop_paired_elsewhere"

// fakeShop answers the drift ping: 401 when refuses is set (the shop holds
// another key), else 200. It counts the pings.
type fakeShop struct {
	srv     *httptest.Server
	refuses atomic.Bool
	pings   atomic.Int64
}

func newFakeShop(t *testing.T, refuses bool) *fakeShop {
	t.Helper()
	s := &fakeShop{}
	s.refuses.Store(refuses)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/rest/V1/byte8/ping" {
			http.NotFound(w, r)
			return
		}
		s.pings.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if s.refuses.Load() {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message":"The consumer isn't authorized to access %resources.","parameters":{"resources":"Byte8_SageAccounting::api"}}`))
			return
		}
		_, _ = w.Write([]byte(`[true,"t1","2026-12-05T12:00:00+00:00"]`))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// driftFixture is ingest with tenant t1 paired to shop's URL.
func driftFixture(t *testing.T, cfg ingest.Config, shop *fakeShop) *fixture {
	t.Helper()
	f := newFixture(t, devtest.NATS(t), cfg)
	if err := f.st.SetMagentoPaired(t.Context(), tenantID, shop.srv.URL, apiKey); err != nil {
		t.Fatal(err)
	}
	return f
}

func signedWith(t *testing.T, key, tenant string, at time.Time) string {
	t.Helper()
	tok, err := magento.MintOutbound(key, tenant, at)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fixture) magentoStatus(t *testing.T, tenant string) string {
	t.Helper()
	tn, err := f.st.Tenant(t.Context(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return tn.Binding.MagentoConnectionStatus
}

func (f *fixture) refused(t *testing.T, n int, tok func() string) {
	t.Helper()
	for i := range n {
		r := f.webhook(t, tenantID, "invoice.created", "invoice.created:drift", tok(), envelope)
		if r.Code != http.StatusUnauthorized {
			t.Fatalf("refusal %d: status %d, body %s", i+1, r.Code, r.Body)
		}
	}
}

// A paired shop whose webhooks fail their signature: below the threshold
// nothing changes; at it, ingest pings the shop, the shop refuses Ledger's
// key too, and the binding becomes token_revoked.
func TestAuthDriftFlipsAPairedTenantAtTheThreshold(t *testing.T) {
	t.Parallel()
	shop := newFakeShop(t, true)
	f := driftFixture(t, ingest.Config{AuthDriftThreshold: 3, AuthDriftWindow: time.Minute}, shop)
	drifted := func() string { return signedWith(t, otherKey, tenantID, time.Now()) }

	f.refused(t, 2, drifted)
	if got := f.magentoStatus(t, tenantID); got != store.StatusActive || shop.pings.Load() != 0 {
		t.Fatalf("below the threshold: status %s, %d pings", got, shop.pings.Load())
	}
	act, err := f.st.ShopActivity(t.Context(), tenantID)
	if err != nil || act.UnauthorizedRecent != 2 || act.LastUnauthorizedReason != "signature does not match the tenant's outbound key" {
		t.Fatalf("activity %+v %v", act, err)
	}
	f.refused(t, 1, drifted)
	if got := f.magentoStatus(t, tenantID); got != store.StatusTokenRevoked || shop.pings.Load() != 1 {
		t.Fatalf("at the threshold: status %s, %d pings; want token_revoked after one ping", got, shop.pings.Load())
	}
	// Flipped: no longer paired-and-active, so further refusals are not
	// counted and the shop is not pinged again.
	f.refused(t, 5, drifted)
	if shop.pings.Load() != 1 {
		t.Fatalf("%d pings after the flip", shop.pings.Load())
	}
	if m := f.do(t, http.MethodGet, "/metrics", nil, nil); !contains(m.Body, `ledger_ingest_auth_drift_checks_total{outcome="confirmed"} 1`) {
		t.Errorf("metrics lack the confirmed check:\n%s", m.Body)
	}
}

// A stranger who knows the tenant id can mint tokens with the right claims
// and a wrong signature. However many it sends, the binding stays active as
// long as the shop accepts Ledger's key, and the shop is pinged once a window.
func TestAuthDriftNeverFlipsOnAStrangersTokens(t *testing.T) {
	t.Parallel()
	shop := newFakeShop(t, false)
	f := driftFixture(t, ingest.Config{AuthDriftThreshold: 2, AuthDriftWindow: time.Hour}, shop)
	f.refused(t, 20, func() string { return signedWith(t, "a-strangers-guess", tenantID, time.Now()) })
	if got := f.magentoStatus(t, tenantID); got != store.StatusActive {
		t.Fatalf("status %s after a stranger's tokens", got)
	}
	if n := shop.pings.Load(); n != 1 {
		t.Fatalf("%d pings for 20 refusals within one window, want 1", n)
	}
	if m := f.do(t, http.MethodGet, "/metrics", nil, nil); !contains(m.Body, `ledger_ingest_auth_drift_checks_total{outcome="refuted"} 1`) {
		t.Errorf("metrics lack the refuted check:\n%s", m.Body)
	}
	// The real shop's own webhooks are accepted throughout.
	wantCode(t, f.webhook(t, tenantID, "invoice.created", "invoice.created:7", token(t), envelope), http.StatusAccepted)
}

// Only a token that is plausibly the paired shop's counts: garbage, another
// tenant's sub, an expired token, no token, a replayed valid token, and
// anything for a tenant that is not paired are refused without counting.
func TestAuthDriftCountsOnlyThePairedShopsSignatures(t *testing.T) {
	t.Parallel()
	shop := newFakeShop(t, true)
	f := driftFixture(t, ingest.Config{AuthDriftThreshold: 1, AuthDriftWindow: time.Hour}, shop)
	ctx := t.Context()
	if _, err := f.st.CreateTenant(ctx, "t2", "Never paired"); err != nil {
		t.Fatal(err)
	}
	replayed := token(t)
	wantCode(t, f.webhook(t, tenantID, "invoice.created", "invoice.created:1", replayed, envelope), http.StatusAccepted)
	for name, tok := range map[string]string{
		"garbage":          "not.a.token",
		"another tenant":   signedWith(t, otherKey, "t9", time.Now()),
		"expired":          signedWith(t, otherKey, tenantID, time.Now().Add(-time.Hour)),
		"from the future":  signedWith(t, otherKey, tenantID, time.Now().Add(time.Hour)),
		"replayed (valid)": replayed,
	} {
		r := f.webhook(t, tenantID, "invoice.created", "invoice.created:2", tok, envelope)
		if r.Code != http.StatusUnauthorized {
			t.Fatalf("%s: status %d", name, r.Code)
		}
	}
	wantCode(t, f.do(t, http.MethodPost, "/webhooks/magento/t1/invoice.created", nil,
		map[string]string{"Content-Type": "application/json", "Idempotency-Key": "k"}), http.StatusUnauthorized)
	// t2 is not paired: Ledger holds no key, so nothing can be drift.
	wantCode(t, f.webhook(t, "t2", "invoice.created", "invoice.created:3", signedWith(t, otherKey, "t2", time.Now()), envelope), http.StatusUnauthorized)
	for _, tn := range []string{tenantID, "t2"} {
		act, err := f.st.ShopActivity(ctx, tn)
		if err != nil || act.UnauthorizedRecent != 0 || !act.LastUnauthorizedAt.IsZero() {
			t.Fatalf("%s: refusals counted: %+v %v", tn, act, err)
		}
	}
	if shop.pings.Load() != 0 || f.magentoStatus(t, tenantID) != store.StatusActive {
		t.Fatalf("%d pings, status %s", shop.pings.Load(), f.magentoStatus(t, tenantID))
	}
	// A disconnected (revoked) or already token_revoked binding is not counted either.
	if err := f.st.SetMagentoStatus(ctx, tenantID, store.StatusTokenRevoked); err != nil {
		t.Fatal(err)
	}
	f.refused(t, 2, func() string { return signedWith(t, otherKey, tenantID, time.Now()) })
	if act, _ := f.st.ShopActivity(ctx, tenantID); act.UnauthorizedRecent != 0 || shop.pings.Load() != 0 {
		t.Fatalf("token_revoked tenant: %+v, %d pings", act, shop.pings.Load())
	}
}

// The refusals must fall within the window, with no accepted delivery in
// between: a shop that signs correctly has not drifted.
func TestAuthDriftWindowAndAcceptedDeliveries(t *testing.T) {
	t.Parallel()
	shop := newFakeShop(t, true)
	const window = time.Second
	f := driftFixture(t, ingest.Config{AuthDriftThreshold: 2, AuthDriftWindow: window}, shop)
	drifted := func() string { return signedWith(t, otherKey, tenantID, time.Now()) }

	f.refused(t, 1, drifted)
	time.Sleep(window + 100*time.Millisecond) // let the window pass: it is measured on the wall clock, no condition to wait on
	f.refused(t, 1, drifted)
	if got := f.magentoStatus(t, tenantID); got != store.StatusActive {
		t.Fatalf("two refusals a window apart flipped the binding: %s", got)
	}
	// An accepted delivery, recorded, then one refusal: still one.
	wantCode(t, f.webhook(t, tenantID, "invoice.created", "invoice.created:9", token(t), envelope), http.StatusAccepted)
	if err := f.svc.FlushActivity(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.refused(t, 1, drifted)
	if act, _ := f.st.ShopActivity(t.Context(), tenantID); act.UnauthorizedRecent != 1 || f.magentoStatus(t, tenantID) != store.StatusActive {
		t.Fatalf("after an accepted delivery: %+v, status %s", act, f.magentoStatus(t, tenantID))
	}
	f.refused(t, 1, drifted)
	if got := f.magentoStatus(t, tenantID); got != store.StatusTokenRevoked {
		t.Fatalf("two refusals within the window: status %s", got)
	}
}

// Accepted deliveries, repeats included, are the shop's last activity once
// flushed; the tile shows it with the verdict and the dead-letter count.
func TestLastWebhookIncludesRepeats(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	ctx := t.Context()
	wantCode(t, f.webhook(t, tenantID, "invoice.created", "invoice.created:1", token(t), envelope), http.StatusAccepted)
	if err := f.svc.FlushActivity(ctx); err != nil {
		t.Fatal(err)
	}
	first, err := f.st.ShopActivity(ctx, tenantID)
	if err != nil || time.Since(first.LastWebhookAt) > time.Minute {
		t.Fatalf("after one webhook: %+v %v", first, err)
	}
	// A repeat creates no run, but the shop is alive.
	devtest.Eventually(t, "a later second", func() bool { return time.Since(first.LastWebhookAt) > 10*time.Millisecond })
	r := f.webhook(t, tenantID, "invoice.created", "invoice.created:1", token(t), envelope)
	wantCode(t, r, http.StatusAccepted)
	if err := f.svc.FlushActivity(ctx); err != nil {
		t.Fatal(err)
	}
	again, _ := f.st.ShopActivity(ctx, tenantID)
	if !again.LastWebhookAt.After(first.LastWebhookAt) {
		t.Fatalf("a repeat did not move the last webhook: %s then %s", first.LastWebhookAt, again.LastWebhookAt)
	}
	if n := len(f.outbox(t)); n != 1 {
		t.Fatalf("%d events published, want 1 (the repeat publishes nothing)", n)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// A relay's rows go through the same accept: rows signed with a drifted key
// count toward the threshold like webhooks (and are dead-lettered as
// relay_unauthorized), and accepted ones are the shop's last delivery.
func TestAuthDriftCountsRelayedRows(t *testing.T) {
	t.Parallel()
	shop := newFakeShop(t, true)
	f := driftFixture(t, ingest.Config{AuthDriftThreshold: 2, AuthDriftWindow: time.Minute}, shop)
	runRelayed(t, f.svc)
	relay(t, f.js, tenantID, "invoice.created", "invoice.created:1", "", token(t), envelope)
	devtest.Eventually(t, "the accepted row", func() bool { return len(f.outbox(t)) == 1 && settled(t, f.js) })
	if err := f.svc.FlushActivity(t.Context()); err != nil {
		t.Fatal(err)
	}
	if act, _ := f.st.ShopActivity(t.Context(), tenantID); act.LastWebhookAt.IsZero() {
		t.Fatal("an accepted relayed row is no delivery")
	}
	for _, key := range []string{"invoice.created:2", "invoice.created:3"} {
		relay(t, f.js, tenantID, "invoice.created", key, "", signedWith(t, otherKey, tenantID, time.Now()), envelope)
	}
	devtest.Eventually(t, "the binding to flip after two drifted rows", func() bool {
		return f.magentoStatus(t, tenantID) == store.StatusTokenRevoked
	})
	if n := len(deadLetters(t, f.js)); n != 2 || shop.pings.Load() != 1 {
		t.Fatalf("%d dead letters and %d pings, want 2 and 1", n, shop.pings.Load())
	}
}

// refusalCounter counts the refusals ingest writes.
type refusalCounter struct {
	ingest.Store
	writes atomic.Int64
}

func (s *refusalCounter) RecordUnauthorized(ctx context.Context, r store.Refusal) (int, error) {
	s.writes.Add(1)
	return s.Store.RecordUnauthorized(ctx, r)
}

// A flood of forged tokens: once the count is at the threshold, refusals are
// written at most about once a second, not once each.
func TestAuthDriftFloodIsWrittenSparingly(t *testing.T) {
	t.Parallel()
	shop := newFakeShop(t, false)
	f := driftFixture(t, ingest.Config{}, shop)
	st := &refusalCounter{Store: f.st}
	svc, err := ingest.New(ingest.Config{AuthDriftThreshold: 2, AuthDriftWindow: time.Hour}, st, f.js, telemetry.Discard())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	start := time.Now()
	const sent = 100
	for range sent {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/webhooks/magento/t1/invoice.created", strings.NewReader(envelope))
		req.Header.Set("Authorization", "Bearer "+signedWith(t, "forged", tenantID, time.Now()))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "k")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d", res.StatusCode)
		}
	}
	// Two to reach the threshold, then at most one per started second.
	limit := int64(2 + time.Since(start)/time.Second + 1)
	if n := st.writes.Load(); n < 2 || n > limit {
		t.Fatalf("%d refusals written for %d sent in %s, want 2 to %d", n, sent, time.Since(start).Round(time.Millisecond), limit)
	}
	if shop.pings.Load() != 1 || f.magentoStatus(t, tenantID) != store.StatusActive {
		t.Fatalf("%d pings, status %s", shop.pings.Load(), f.magentoStatus(t, tenantID))
	}
}
