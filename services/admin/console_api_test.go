package admin_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/admin"
)

// run records a run of tenant with the given event and entity, then finishes
// it with o (o.Status "" leaves it pending).
func (h *harness) run(t *testing.T, tenant, event, entity string, id int64, increment string, o store.Outcome) store.Run {
	t.Helper()
	ctx := t.Context()
	acc, err := h.st.AcceptWebhook(ctx, store.Delivery{TenantID: tenant, IdempotencyKey: fmt.Sprintf("%s:%d", event, id),
		Event: event, EntityType: entity, MagentoEntityID: id, WebsiteID: 1, StoreID: 1,
		OccurredAt: "2026-05-01T09:00:00Z", Payload: fmt.Appendf(nil, `{"increment_id":%q}`, increment)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != "" {
		if _, err := h.st.StartRun(ctx, acc.RunID); err != nil {
			t.Fatal(err)
		}
		o.RunID = acc.RunID
		if _, err := h.st.FinishRun(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	r, err := h.st.Run(ctx, acc.RunID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func runIDs(rs []*ledgerv1.Run) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.GetSyncRunId()
	}
	return out
}

func TestListRunsFiltersAndPages(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "acme")
	h.createTenant(t, "other")
	failed := store.Outcome{Status: store.RunFailed, ErrorClass: "validation", ErrorCode: "record_invalid", Message: "no"}
	var invoices []store.Run
	for i := range 7 {
		invoices = append(invoices, h.run(t, "acme", "invoice.created", "invoice", int64(100+i), fmt.Sprintf("0000001%02d", i), failed))
	}
	skipped := h.run(t, "acme", "customer.upserted", "customer", 5, "", store.Outcome{Status: store.RunSkipped, SkipReason: "sync_disabled"})
	paid := h.run(t, "acme", "invoice.paid", "payment", 100, "000000100", store.Outcome{Status: store.RunSucceeded, SageID: "p1", AppliedQuirks: []string{"shipping_zero_rate"}})
	h.run(t, "other", "invoice.created", "invoice", 100, "000000100", failed)

	list := func(req *ledgerv1.ListRunsRequest) *ledgerv1.ListRunsResponse {
		t.Helper()
		resp, err := h.client.ListRuns(h.ctx(t), req)
		if err != nil {
			t.Fatalf("ListRuns(%v): %v", req, err)
		}
		return resp
	}
	one := func(f *ledgerv1.RunFilter, want store.Run) {
		t.Helper()
		got := list(&ledgerv1.ListRunsRequest{Filter: f}).GetRuns()
		if len(got) != 1 || got[0].GetSyncRunId() != want.ID {
			t.Fatalf("filter %v: got %v, want only %s", f, runIDs(got), want.ID)
		}
	}
	one(&ledgerv1.RunFilter{TenantId: "acme", SkipReason: "sync_disabled"}, skipped)
	one(&ledgerv1.RunFilter{TenantId: "acme", Event: "invoice.paid"}, paid)
	one(&ledgerv1.RunFilter{TenantId: "acme", EntityType: "customer"}, skipped)
	one(&ledgerv1.RunFilter{TenantId: "acme", IncrementId: "000000103"}, invoices[3])
	one(&ledgerv1.RunFilter{TenantId: "acme", MagentoEntityId: 104, EntityType: "invoice"}, invoices[4])
	one(&ledgerv1.RunFilter{TenantId: "acme", Status: "succeeded"}, paid)
	if got := list(&ledgerv1.ListRunsRequest{Filter: &ledgerv1.RunFilter{ErrorCode: "record_invalid", ErrorClass: "validation"}, Limit: 100}).GetRuns(); len(got) != 8 {
		t.Fatalf("by code across tenants: %d runs, want 8", len(got))
	}
	// The old shorthands still filter.
	if got := list(&ledgerv1.ListRunsRequest{TenantId: "other"}).GetRuns(); len(got) != 1 {
		t.Fatalf("tenant shorthand: %d runs", len(got))
	}
	if got := list(&ledgerv1.ListRunsRequest{Filter: &ledgerv1.RunFilter{TenantId: "acme",
		Since: timestamppb.New(time.Now().Add(time.Hour))}}).GetRuns(); len(got) != 0 {
		t.Fatalf("since in the future: %d runs", len(got))
	}
	if got := list(&ledgerv1.ListRunsRequest{Filter: &ledgerv1.RunFilter{TenantId: "acme", Since: timestamppb.New(time.Now().Add(-time.Hour)),
		Until: timestamppb.New(time.Now().Add(time.Hour))}}).GetRuns(); len(got) != 9 {
		t.Fatalf("the last two hours: %d runs, want 9", len(got))
	}
	if r := list(&ledgerv1.ListRunsRequest{Filter: &ledgerv1.RunFilter{Event: "invoice.paid"}}).GetRuns(); len(r) != 1 ||
		strings.Join(r[0].GetAppliedQuirks(), ",") != "shipping_zero_rate" {
		t.Fatalf("applied quirks: %v", r)
	}

	// Pages of 3 walk every acme run once, newest first.
	var seen []string
	tok := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		resp := list(&ledgerv1.ListRunsRequest{TenantId: "acme", Limit: 3, PageToken: tok})
		seen = append(seen, runIDs(resp.GetRuns())...)
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	all := list(&ledgerv1.ListRunsRequest{TenantId: "acme", Limit: 100}).GetRuns()
	if strings.Join(seen, ",") != strings.Join(runIDs(all), ",") || len(seen) != 9 {
		t.Fatalf("pages gave %d runs %v, one listing %v", len(seen), seen, runIDs(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].GetCreatedAt().AsTime().After(all[i-1].GetCreatedAt().AsTime()) {
			t.Fatalf("not newest first at %d", i)
		}
	}

	for _, bad := range []struct {
		req  *ledgerv1.ListRunsRequest
		want string
	}{
		{&ledgerv1.ListRunsRequest{Filter: &ledgerv1.RunFilter{Status: "done"}}, "status"},
		{&ledgerv1.ListRunsRequest{Filter: &ledgerv1.RunFilter{TenantId: "a b"}}, "tenant_id"},
		{&ledgerv1.ListRunsRequest{Filter: &ledgerv1.RunFilter{ErrorCode: "Record Invalid"}}, "error_code"},
		{&ledgerv1.ListRunsRequest{Filter: &ledgerv1.RunFilter{Event: "invoice"}}, "event"},
		{&ledgerv1.ListRunsRequest{Filter: &ledgerv1.RunFilter{IncrementId: "0001; drop"}}, "increment_id"},
		{&ledgerv1.ListRunsRequest{Filter: &ledgerv1.RunFilter{MagentoEntityId: -1}}, "magento_entity_id"},
		{&ledgerv1.ListRunsRequest{Filter: &ledgerv1.RunFilter{Since: timestamppb.Now(), Until: timestamppb.New(time.Now().Add(-time.Hour))}}, "until"},
		{&ledgerv1.ListRunsRequest{PageToken: "not-a-token"}, "page_token"},
		{&ledgerv1.ListRunsRequest{Limit: 1001}, "limit"},
	} {
		_, err := h.client.ListRuns(h.ctx(t), bad.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), bad.want) {
			t.Errorf("ListRuns(%v) = %v, want InvalidArgument naming %s", bad.req, err, bad.want)
		}
	}
}

func TestRetryRunsByFilter(t *testing.T) {
	t.Parallel()
	h := newBusHarness(t)
	h.createTenant(t, "acme")
	failed := store.Outcome{Status: store.RunFailed, ErrorClass: "validation", ErrorCode: "ref_cache_stale", Message: "stale"}
	var want []string
	for i := range 4 {
		want = append(want, h.run(t, "acme", "invoice.created", "invoice", int64(i+1), "", failed).ID)
	}
	h.run(t, "acme", "invoice.created", "invoice", 50, "", store.Outcome{}) // pending: never retried
	h.run(t, "acme", "invoice.created", "invoice", 51, "", store.Outcome{Status: store.RunFailed, ErrorClass: "validation", ErrorCode: "record_invalid"})
	f := &ledgerv1.RunFilter{TenantId: "acme", ErrorCode: "ref_cache_stale"}

	dry, err := h.client.RetryRuns(h.ctx(t), &ledgerv1.RetryRunsRequest{Filter: f, DryRun: true})
	if err != nil || dry.GetMatched() != 4 || len(dry.GetRuns()) != 0 {
		t.Fatalf("dry run: %v, %v", dry, err)
	}
	if r, _ := h.st.Run(t.Context(), want[0]); r.Status != store.RunFailed {
		t.Fatalf("a dry run changed a run to %s", r.Status)
	}
	resp, err := h.client.RetryRuns(h.ctx(t), &ledgerv1.RetryRunsRequest{Filter: f})
	if err != nil || resp.GetMatched() != 4 || len(resp.GetRuns()) != 4 {
		t.Fatalf("retry by filter: %v, %v", resp, err)
	}
	for _, id := range want {
		if r, _ := h.st.Run(t.Context(), id); r.Status != store.RunPending {
			t.Fatalf("run %s is %s after a retry by filter", id, r.Status)
		}
	}
	for _, bad := range []struct {
		req  *ledgerv1.RetryRunsRequest
		want string
	}{
		{&ledgerv1.RetryRunsRequest{Filter: &ledgerv1.RunFilter{ErrorCode: "x"}}, "tenant_id is required"},
		{&ledgerv1.RetryRunsRequest{Filter: &ledgerv1.RunFilter{TenantId: "acme", Status: "running"}}, "only finished runs"},
		{&ledgerv1.RetryRunsRequest{Filter: f, SyncRunIds: want[:1]}, "not both"},
		{&ledgerv1.RetryRunsRequest{}, "sync_run_ids is empty"},
	} {
		if _, err := h.client.RetryRuns(h.ctx(t), bad.req); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("RetryRuns(%v) = %v, want InvalidArgument with %q", bad.req, err, bad.want)
		}
	}
}

func TestPurgeDeadLetters(t *testing.T) {
	t.Parallel()
	h := newBusHarness(t)
	h.createTenant(t, "acme")
	for i := range 5 {
		h.deadLetter(t, "sage-writer", "acme", fmt.Sprintf("9b2f7c1e-0000-4000-8000-00000000000%d", i), "contact_reference_reserved", "ledger.sage.acme.invoice")
	}
	h.deadLetter(t, "mapper", "acme", "9b2f7c1e-0000-4000-8000-000000000009", "ref_cache_stale", "ledger.outbox.acme.invoice.created")
	f := &ledgerv1.DeadLetterFilter{TenantId: "acme", ErrorCode: "contact_reference_reserved"}

	if got, err := h.client.GetTenant(h.ctx(t), &ledgerv1.GetTenantRequest{TenantId: "acme"}); err != nil || got.GetCounts().GetDeadLetters() != 6 {
		t.Fatalf("GetTenant dead letters: %v, %v", got.GetCounts(), err)
	}
	dry, err := h.client.PurgeDeadLetters(h.ctx(t), &ledgerv1.PurgeDeadLettersRequest{Filter: f, DryRun: true})
	if err != nil || dry.GetMatched() != 5 || dry.GetPurged() != 0 {
		t.Fatalf("dry run: %v, %v", dry, err)
	}
	// A confirmation of another count deletes nothing.
	if _, err := h.client.PurgeDeadLetters(h.ctx(t), &ledgerv1.PurgeDeadLettersRequest{Filter: f, ExpectedCount: 4}); status.Code(err) != codes.FailedPrecondition ||
		!strings.Contains(err.Error(), "5 dead letters match") {
		t.Fatalf("wrong confirmation: %v", err)
	}
	resp, err := h.client.PurgeDeadLetters(h.ctx(t), &ledgerv1.PurgeDeadLettersRequest{Filter: f, ExpectedCount: 5})
	if err != nil || resp.GetPurged() != 5 || resp.GetFailed() != 0 {
		t.Fatalf("purge: %v, %v", resp, err)
	}
	left, err := h.client.ListDeadLetters(h.ctx(t), &ledgerv1.ListDeadLettersRequest{Filter: &ledgerv1.DeadLetterFilter{TenantId: "acme"}})
	if err != nil || len(left.GetDeadLetters()) != 1 || left.GetDeadLetters()[0].GetDeadLetter().GetErrorCode() != "ref_cache_stale" {
		t.Fatalf("after the purge: %v, %v", left, err)
	}
	if got, _ := h.client.GetTenant(h.ctx(t), &ledgerv1.GetTenantRequest{TenantId: "acme"}); got.GetCounts().GetDeadLetters() != 1 {
		t.Fatalf("GetTenant dead letters after the purge: %d", got.GetCounts().GetDeadLetters())
	}
	if _, err := h.client.PurgeDeadLetters(h.ctx(t), &ledgerv1.PurgeDeadLettersRequest{Filter: &ledgerv1.DeadLetterFilter{Stage: "nope"}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad stage: %v", err)
	}
}

func TestOAuthStatus(t *testing.T) {
	t.Parallel()
	prod := newHarness(t)
	prod.createTenant(t, "acme")
	got, err := prod.client.GetOAuthStatus(prod.ctx(t), &ledgerv1.GetOAuthStatusRequest{TenantId: "acme"})
	if err != nil || got.GetStatus() != "not_connected" || got.GetAccessExpiresAt() != nil {
		t.Fatalf("before connecting: %v, %v", got, err)
	}
	prod.connectSage(t, "acme")
	got, err = prod.client.GetOAuthStatus(prod.ctx(t), &ledgerv1.GetOAuthStatusRequest{TenantId: "acme"})
	if err != nil || got.GetStatus() != "active" || got.GetBusinessId() == "" || len(got.GetScopes()) == 0 ||
		!got.GetAccessExpiresAt().AsTime().After(time.Now()) || got.GetRefreshedAt() == nil || got.GetAccessToken() != "" {
		t.Fatalf("connected: %v, %v", got, err)
	}
	_, err = prod.client.GetOAuthStatus(prod.ctx(t), &ledgerv1.GetOAuthStatusRequest{TenantId: "acme", RevealToken: true})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "LEDGER_ENV=prod") {
		t.Fatalf("reveal in prod: %v", err)
	}

	dev := newHarness(t, func(c *admin.Config) { c.Env = "dev" })
	dev.createTenant(t, "acme")
	dev.connectSage(t, "acme")
	got, err = dev.client.GetOAuthStatus(dev.ctx(t), &ledgerv1.GetOAuthStatusRequest{TenantId: "acme", RevealToken: true})
	tok, _ := dev.st.Tokens(t.Context(), "acme")
	if err != nil || got.GetAccessToken() == "" || got.GetAccessToken() != tok.Access {
		t.Fatalf("reveal in dev: %v, %v", got, err)
	}
}
