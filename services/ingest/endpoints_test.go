package ingest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/services/ingest"
)

func bearer(t *testing.T) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token(t), "Accept": "application/json"}
}

func TestTileHealthReportsRealCounts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	ctx := t.Context()

	r := f.do(t, http.MethodGet, "/v1/tile/health", nil, bearer(t))
	wantCode(t, r, http.StatusOK)
	// The documented keys (wire §2.2) keep their names and values; the
	// additions (sync.dead_letter_count, health) come after them.
	const documented = `{"tenant":{"magento_connection_status":"active"},"binding":{"status":"pending","region":"uk"},"sync":{"pending_count":0,"failed_24h":0`
	if got := strings.TrimSpace(string(r.Body)); !strings.HasPrefix(got, documented+`,"dead_letter_count":0},"health":{"verdict":"never_sent","message":"Paired, but Ledger has not received anything`) {
		t.Errorf("fresh tenant: %s", got)
	}

	var runs []string
	for _, key := range []string{"invoice.created:1", "invoice.created:2", "invoice.created:3"} {
		r := f.webhook(t, tenantID, "invoice.created", key, token(t), envelope)
		wantCode(t, r, http.StatusAccepted)
		runs = append(runs, r.json(t)["sync_run_id"].(string))
	}
	if _, err := f.st.FinishRun(ctx, store.Outcome{RunID: runs[0], Status: store.RunFailed, ErrorCode: "e", Message: "m"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.FinishRun(ctx, store.Outcome{RunID: runs[1], Status: store.RunSucceeded, SageID: "s1"}); err != nil {
		t.Fatal(err)
	}
	if err := f.st.SetSageStatus(ctx, tenantID, store.StatusActive, "biz-1"); err != nil {
		t.Fatal(err)
	}

	r = f.do(t, http.MethodGet, "/v1/tile/health", nil, bearer(t))
	wantCode(t, r, http.StatusOK)
	body := r.json(t)
	binding := body["binding"].(map[string]any)
	sync := body["sync"].(map[string]any)
	if binding["status"] != "active" || sync["pending_count"] != 1.0 || sync["failed_24h"] != 1.0 {
		t.Errorf("tile %s", r.Body)
	}
	if sync["dead_letter_count"] != 0.0 || body["health"].(map[string]any)["verdict"] != "ok" {
		t.Errorf("tile %s: want no dead letters and verdict ok", r.Body)
	}
	if lw, err := time.Parse(time.RFC3339, sync["last_webhook_at"].(string)); err != nil || time.Since(lw) > time.Minute {
		t.Errorf("last_webhook_at %v (%v), want RFC 3339 UTC of now", sync["last_webhook_at"], err)
	}
	last, err := time.Parse(time.RFC3339, sync["last_run_at"].(string))
	if err != nil || time.Since(last) > time.Minute || !strings.HasSuffix(sync["last_run_at"].(string), "Z") {
		t.Errorf("last_run_at %v (%v), want RFC 3339 UTC of now", sync["last_run_at"], err)
	}

	wantCode(t, f.do(t, http.MethodGet, "/v1/tile/health", nil, nil), http.StatusUnauthorized)
}

func TestDisconnectRevokesTheBinding(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	h := bearer(t)
	h["Content-Type"] = "application/json"
	h["Idempotency-Key"] = "disconnect:whatever"
	r := f.do(t, http.MethodPost, "/v1/tenant/disconnect", strings.NewReader("{}"), h)
	wantCode(t, r, http.StatusNoContent)

	tn, err := f.st.Tenant(t.Context(), tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if tn.Binding.MagentoConnectionStatus != store.StatusRevoked || tn.Binding.APIKey != "" {
		t.Errorf("binding after disconnect: %s, key kept %v", tn.Binding.MagentoConnectionStatus, tn.Binding.APIKey != "")
	}
	// The key is gone: a second disconnect and any webhook are refused.
	h["Authorization"] = "Bearer " + token(t)
	wantCode(t, f.do(t, http.MethodPost, "/v1/tenant/disconnect", strings.NewReader("{}"), h), http.StatusUnauthorized)
	wantCode(t, f.webhook(t, tenantID, "invoice.created", "invoice.created:1", token(t), envelope), http.StatusUnauthorized)
}

func TestStatusReturnsTheLatestRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	r := f.webhook(t, tenantID, "invoice.created", "invoice.created:42", token(t), envelope)
	wantCode(t, r, http.StatusAccepted)
	first := r.json(t)["sync_run_id"].(string)
	r = f.webhook(t, tenantID, "invoice.paid", "invoice.paid:42", token(t), envelope)
	wantCode(t, r, http.StatusAccepted)
	latest := r.json(t)["sync_run_id"].(string)

	r = f.do(t, http.MethodGet, "/v1/status?entity_type=invoice&entity_id=42", nil, bearer(t))
	wantCode(t, r, http.StatusOK)
	run, _ := r.json(t)["sync_run"].(map[string]any)
	if run == nil || (run["sync_run_id"] != latest && run["sync_run_id"] != first) || run["status"] != "pending" {
		t.Errorf("status %s", r.Body)
	}

	r = f.do(t, http.MethodGet, "/v1/status?entity_type=customer&entity_id=42", nil, bearer(t))
	wantCode(t, r, http.StatusOK)
	if body := r.json(t); body["sync_run"] != nil || body["entity_type"] != "customer" {
		t.Errorf("no run: %s", r.Body)
	}
	r = f.do(t, http.MethodGet, "/v1/status?entity_type=order&entity_id=1", nil, bearer(t))
	wantCode(t, r, http.StatusBadRequest)
	r = f.do(t, http.MethodGet, "/v1/status?entity_type=invoice&entity_id=x", nil, bearer(t))
	wantCode(t, r, http.StatusBadRequest)
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	wantCode(t, f.webhook(t, tenantID, "invoice.created", "invoice.created:1", token(t), envelope), http.StatusAccepted)
	wantCode(t, f.webhook(t, tenantID, "invoice.created", "invoice.created:1", token(t), envelope), http.StatusAccepted)
	wantCode(t, f.webhook(t, tenantID, "invoice.created", "invoice.created:1", "bad", envelope), http.StatusUnauthorized)

	r := f.do(t, http.MethodGet, "/metrics", nil, nil)
	wantCode(t, r, http.StatusOK)
	for _, want := range []string{
		`ledger_ingest_webhooks_total{code="202",outcome="accepted"} 1`,
		`ledger_ingest_webhooks_total{code="202",outcome="duplicate"} 1`,
		`ledger_ingest_webhooks_total{code="401",outcome="unauthorized"} 1`,
		// The repeat's run is still pending (nothing consumes OUTBOX here), so
		// it is published again; JetStream keeps one copy.
		`ledger_ingest_publish_duration_seconds_count{result="ok"} 2`,
		`ledger_ingest_replay_cache_entries 2`,
	} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// The tile counts the tenant's dead letters of every stage, and only its own,
// and says silent once the shop has sent nothing for ShopSilentAfter.
func TestTileHealthCountsDeadLettersAndSilence(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{ShopSilentAfter: time.Second})
	ctx := t.Context()
	for _, subj := range []string{
		bus.DLQSubject("mapper", tenantID, "invoice"), bus.DLQSubject("sage-writer", tenantID, "contact"),
		bus.DLQSubject("ingest", tenantID, "invoice"), bus.DLQSubject("mapper", "t10", "invoice"),
	} {
		if _, err := f.js.Publish(ctx, subj, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, f.webhook(t, tenantID, "invoice.created", "invoice.created:1", token(t), envelope), http.StatusAccepted)
	r := f.do(t, http.MethodGet, "/v1/tile/health", nil, bearer(t))
	wantCode(t, r, http.StatusOK)
	body := r.json(t)
	if n := body["sync"].(map[string]any)["dead_letter_count"]; n != 3.0 {
		t.Fatalf("dead_letter_count %v, want 3 (t10's is not t1's): %s", n, r.Body)
	}
	devtest.Eventually(t, "the tile to say silent", func() bool {
		r := f.do(t, http.MethodGet, "/v1/tile/health", nil, bearer(t))
		h := r.json(t)["health"].(map[string]any)
		return h["verdict"] == "silent" && strings.Contains(h["message"].(string), "cron:run --group=default")
	})
}
