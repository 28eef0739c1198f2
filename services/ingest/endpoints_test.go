package ingest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

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
	if got := strings.TrimSpace(string(r.Body)); got != `{"tenant":{"magento_connection_status":"active"},"binding":{"status":"pending","region":"uk"},"sync":{"pending_count":0,"failed_24h":0}}` {
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
		`ledger_ingest_publish_duration_seconds_count{result="ok"} 1`,
		`ledger_ingest_replay_cache_entries 2`,
	} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
