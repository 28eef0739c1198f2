package admin_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/admin"
)

// A run keeps the trace id of the webhook that started it: GetRun and ListRuns
// return it, and with LEDGER_TRACING_UI_URL set the dashboard links the run
// to its trace.
func TestRunsLinkToTheirTraces(t *testing.T) {
	t.Parallel()
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	h := newHarness(t, func(c *admin.Config) { c.TracingUIURL = "http://jaeger:16686/trace/{trace_id}" })
	ctx := h.ctx(t)
	h.createTenant(t, "traced")
	acc, err := h.st.AcceptWebhook(t.Context(), store.Delivery{TenantID: "traced", IdempotencyKey: "invoice.created:1", Event: "invoice.created",
		EntityType: "invoice", MagentoEntityID: 1, TraceID: traceID, SpanID: "00f067aa0ba902b7"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.AcceptWebhook(t.Context(), store.Delivery{TenantID: "traced", IdempotencyKey: "invoice.created:2", Event: "invoice.created",
		EntityType: "invoice", MagentoEntityID: 2}, 0); err != nil {
		t.Fatal(err)
	}
	run, err := h.st.Run(t.Context(), acc.RunID)
	if err != nil || run.TraceID != traceID || run.TraceSpanID != "00f067aa0ba902b7" {
		t.Fatalf("stored run: %+v %v", run, err)
	}
	got, err := h.client.GetRun(ctx, &ledgerv1.GetRunRequest{SyncRunId: acc.RunID})
	if err != nil || got.GetRun().GetTraceId() != traceID {
		t.Fatalf("GetRun: %v %v", got, err)
	}
	code, _, body := h.get(t, h.http.URL+"/dashboard?tenant=traced", http.Header{"Authorization": {"Bearer " + testToken}})
	if code != http.StatusOK || !strings.Contains(body, `<a href="http://jaeger:16686/trace/`+traceID+`">trace</a>`) ||
		strings.Count(body, ">trace</a>") != 1 {
		t.Fatalf("dashboard: %d\n%s", code, body)
	}

	// Without a tracing UI there is no trace column.
	plain := newHarness(t)
	plain.createTenant(t, "plain")
	code, _, body = plain.get(t, plain.http.URL+"/dashboard", http.Header{"Authorization": {"Bearer " + testToken}})
	if code != http.StatusOK || strings.Contains(body, "<th>Trace</th>") {
		t.Fatalf("dashboard without a tracing UI: %d\n%s", code, body)
	}
}

func TestTracingUIURLMustNameTheTraceID(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://jaeger:16686/trace/", "jaeger/{trace_id}"} {
		c := admin.Config{AdminToken: "0123456789abcdef0123", LedgerBaseURL: "https://ledger.example.com", TracingUIURL: u}.WithDefaults()
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "LEDGER_TRACING_UI_URL") {
			t.Errorf("%q: %v", u, err)
		}
	}
	c := admin.Config{AdminToken: "0123456789abcdef0123", LedgerBaseURL: "https://ledger.example.com",
		TracingUIURL: "http://jaeger:16686/trace/{trace_id}"}.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
