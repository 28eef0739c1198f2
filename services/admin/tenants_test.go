package admin_test

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

func TestTenantsAndRuns(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := h.ctx(t)

	_, err := h.client.CreateTenant(ctx, &ledgerv1.CreateTenantRequest{TenantId: "bad id!", Name: "x"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "tenant_id") {
		t.Fatalf("bad id: %v", err)
	}
	if _, err := h.client.CreateTenant(ctx, &ledgerv1.CreateTenantRequest{TenantId: "x"}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "name") {
		t.Fatalf("no name: %v", err)
	}
	auto, err := h.client.CreateTenant(ctx, &ledgerv1.CreateTenantRequest{Name: "Auto Ltd"})
	if err != nil || len(auto.GetTenant().GetTenantId()) != 36 {
		t.Fatalf("generated id: %v %v", auto, err)
	}
	acme := h.createTenant(t, "acme")
	if acme.GetMagentoConnectionStatus() != store.StatusPending || acme.GetSageStatus() != "not_connected" {
		t.Fatalf("new tenant: %v", acme)
	}
	if again := h.createTenant(t, "acme"); again.GetTenantId() != "acme" {
		t.Fatalf("idempotent create: %v", again)
	}
	if _, err := h.client.CreateTenant(ctx, &ledgerv1.CreateTenantRequest{TenantId: "acme", Name: "Other"}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("same id, other name: %v", err)
	}
	list, err := h.client.ListTenants(ctx, &ledgerv1.ListTenantsRequest{})
	if err != nil || len(list.GetTenants()) != 2 {
		t.Fatalf("ListTenants: %v %v", list, err)
	}
	if _, err := h.client.GetTenant(ctx, &ledgerv1.GetTenantRequest{TenantId: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown tenant: %v", err)
	}

	// Two runs: one failed, one pending.
	bg := t.Context()
	a1, err := h.st.AcceptWebhook(bg, store.Delivery{TenantID: "acme", IdempotencyKey: "invoice.created:1", Event: "invoice.created", EntityType: "invoice", MagentoEntityID: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.FinishRun(bg, store.Outcome{RunID: a1.RunID, Status: store.RunFailed, ErrorClass: "validation",
		ErrorCode: "payment_method_not_mapped", Message: "map <checkmo> to a bank account"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.AcceptWebhook(bg, store.Delivery{TenantID: "acme", IdempotencyKey: "invoice.created:2", Event: "invoice.created", EntityType: "invoice", MagentoEntityID: 2}, 0); err != nil {
		t.Fatal(err)
	}
	gt, err := h.client.GetTenant(ctx, &ledgerv1.GetTenantRequest{TenantId: "acme"})
	if err != nil || gt.GetCounts().GetFailed() != 1 || gt.GetCounts().GetPending() != 1 || gt.GetCounts().GetFailed_24H() != 1 {
		t.Fatalf("counts: %v %v", gt.GetCounts(), err)
	}
	runs, err := h.client.ListRuns(ctx, &ledgerv1.ListRunsRequest{TenantId: "acme", Status: "failed"})
	if err != nil || len(runs.GetRuns()) != 1 || runs.GetRuns()[0].GetErrorCode() != "payment_method_not_mapped" || runs.GetRuns()[0].GetFinishedAt() == nil {
		t.Fatalf("failed runs: %v %v", runs, err)
	}
	if _, err := h.client.ListRuns(ctx, &ledgerv1.ListRunsRequest{Status: "broken"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad status: %v", err)
	}
	if _, err := h.client.ListRuns(ctx, &ledgerv1.ListRunsRequest{Limit: 5000}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad limit: %v", err)
	}

	// The dashboard shows both, escaped.
	code, _, body := h.get(t, h.http.URL+"/dashboard", http.Header{"Authorization": {"Bearer " + testToken}})
	if code != http.StatusOK || !strings.Contains(body, "payment_method_not_mapped") || !strings.Contains(body, "map &lt;checkmo&gt;") ||
		!strings.Contains(body, "Auto Ltd") {
		t.Fatalf("dashboard: %d\n%s", code, body)
	}

	// A succeeded run says what it did in Sage, in the API and on the dashboard.
	a3, err := h.st.AcceptWebhook(bg, store.Delivery{TenantID: "acme", IdempotencyKey: "customer.upserted:3", Event: "customer.upserted", EntityType: "customer", MagentoEntityID: 3}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.FinishRun(bg, store.Outcome{RunID: a3.RunID, Status: store.RunSucceeded, SageID: "c3", Change: store.ChangeUpdated}); err != nil {
		t.Fatal(err)
	}
	got, err := h.client.GetRun(ctx, &ledgerv1.GetRunRequest{SyncRunId: a3.RunID})
	if err != nil || got.GetRun().GetChange() != "updated" {
		t.Fatalf("GetRun: change %q, %v", got.GetRun().GetChange(), err)
	}
	if _, _, body := h.get(t, h.http.URL+"/dashboard", http.Header{"Authorization": {"Bearer " + testToken}}); !strings.Contains(body, "succeeded (updated)") {
		t.Fatalf("the dashboard does not say the run updated its document:\n%s", body)
	}
}
