package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

func (f *fakeAdmin) GetRun(ctx context.Context, r *ledgerv1.GetRunRequest) (*ledgerv1.GetRunResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	return &ledgerv1.GetRunResponse{
		Run: &ledgerv1.Run{SyncRunId: r.GetSyncRunId(), TenantId: "acme", Event: "invoice.created", EntityType: "invoice",
			MagentoEntityId: 42, Status: "failed", ErrorClass: "validation", ErrorCode: "payment_method_not_mapped",
			LastError: "map checkmo to a bank account", Attempts: 2, CreatedAt: created, AppliedQuirks: []string{"s7_line_tax", "s23_contact_reference"}},
		CanonicalJson: `{"entity_id":42,"increment_id":"000000042"}`,
		Attempts: []*ledgerv1.Attempt{
			{Stage: "mapper", Method: "GET", Path: "/rest/V1/byte8/invoice/42", HttpStatus: 200, DurationMs: 12, Outcome: "ok"},
			{Stage: "sage-writer", Method: "POST", Path: "/sales_invoices", HttpStatus: 422, DurationMs: 80, Outcome: "failed",
				ErrorSource: "line_items.0.ledger_account_id", Envelope: `[{"$severity":"error"}]`},
		},
	}, nil
}

func (f *fakeAdmin) RetryRuns(ctx context.Context, r *ledgerv1.RetryRunsRequest) (*ledgerv1.RetryRunsResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	ids := r.GetSyncRunIds()
	if r.GetFilter() != nil {
		ids = []string{"f1", "f2", "f3"}[:min(3, int(r.GetLimit()))]
	}
	out := &ledgerv1.RetryRunsResponse{Matched: int64(len(ids))}
	if r.GetDryRun() {
		return out, nil
	}
	for _, id := range ids {
		rr := &ledgerv1.RetriedRun{SyncRunId: id}
		if id == "busy" {
			rr.Error = "run busy is running now: wait until it finishes, then retry it"
		}
		out.Runs = append(out.Runs, rr)
	}
	return out, nil
}

func (f *fakeAdmin) BackfillSyncState(r *ledgerv1.BackfillSyncStateRequest, s grpc.ServerStreamingServer[ledgerv1.BackfillSyncStateResponse]) error {
	if err := f.auth(s.Context(), r); err != nil {
		return err
	}
	if r.GetDryRun() {
		return s.Send(&ledgerv1.BackfillSyncStateResponse{Total: 300, Done: true, Message: "dry run: would push 300 succeeded runs"})
	}
	for _, m := range []*ledgerv1.BackfillSyncStateResponse{
		{Total: 300, Pushed: 100, Message: "resuming the backfill: 100 of 300 runs already pushed, 200 to go"},
		{Total: 300, Pushed: 200},
		{Total: 300, Pushed: 300},
		{Total: 300, Pushed: 300, Done: true, Message: "backfill complete: 300 pushed"},
	} {
		if err := s.Send(m); err != nil {
			return err
		}
	}
	if r.GetTenantId() == "stall" {
		return status.Error(codes.Unavailable, "the shop confirmed no sync state for 2m0s")
	}
	return nil
}

func (f *fakeAdmin) SetXref(ctx context.Context, r *ledgerv1.SetXrefRequest) (*ledgerv1.SetXrefResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	return &ledgerv1.SetXrefResponse{PreviousSageId: "old-contact"}, nil
}

func (f *fakeAdmin) GetPolicy(ctx context.Context, r *ledgerv1.GetPolicyRequest) (*ledgerv1.GetPolicyResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	return &ledgerv1.GetPolicyResponse{PolicyJson: "{\n  \"sync_products\": true\n}"}, nil
}

func (f *fakeAdmin) SetPolicy(ctx context.Context, r *ledgerv1.SetPolicyRequest) (*ledgerv1.SetPolicyResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	if strings.Contains(r.GetPolicyJson(), "colour") {
		return nil, status.Error(codes.InvalidArgument, `invalid policy: policy: json: unknown field "colour"`)
	}
	return &ledgerv1.SetPolicyResponse{PolicyJson: r.GetPolicyJson()}, nil
}

func (f *fakeAdmin) RefreshReferenceData(ctx context.Context, r *ledgerv1.RefreshReferenceDataRequest) (*ledgerv1.RefreshReferenceDataResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	return &ledgerv1.RefreshReferenceDataResponse{Counts: map[string]int32{"tax_rates": 9, "bank_accounts": 2, "ledger_accounts": 40}}, nil
}

func (f *fakeAdmin) ListDeadLetters(ctx context.Context, r *ledgerv1.ListDeadLettersRequest) (*ledgerv1.ListDeadLettersResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	return &ledgerv1.ListDeadLettersResponse{DeadLetters: []*ledgerv1.DeadLetterSummary{{Sequence: 7, Subject: "ledger.dlq.mapper.acme.invoice",
		DeadLetter: &ledgerv1.DeadLetter{Stage: "mapper", TenantId: "acme", SyncRunId: "r1", ErrorClass: "validation",
			ErrorCode: "payment_method_not_mapped", Message: "map checkmo", Attempts: 1, LastFailureAt: created}}}}, nil
}

func (f *fakeAdmin) ReplayDeadLetters(r *ledgerv1.ReplayDeadLettersRequest, s grpc.ServerStreamingServer[ledgerv1.ReplayDeadLettersResponse]) error {
	if err := f.auth(s.Context(), r); err != nil {
		return err
	}
	if r.GetDryRun() {
		return s.Send(&ledgerv1.ReplayDeadLettersResponse{Matched: 3, Done: true, Message: "dry run: 3 dead letters would be replayed"})
	}
	_ = s.Send(&ledgerv1.ReplayDeadLettersResponse{Matched: 3})
	return s.Send(&ledgerv1.ReplayDeadLettersResponse{Matched: 3, Replayed: 2, Failed: 1, Done: true, Message: "replayed 2 of 3 dead letters; 1 failed"})
}

func (f *fakeAdmin) lastRequest() any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func TestOpsUsageErrors(t *testing.T) {
	t.Setenv("LEDGER_ADMIN_TOKEN", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"runs", "show"}, "give exactly one run id"},
		{[]string{"runs", "retry"}, "give one or more run ids"},
		{[]string{"backfill", "sync-state"}, "--tenant is required"},
		{[]string{"backfill", "sync-state", "--tenant", "a", "--rate", "-5"}, "--rate -5"},
		{[]string{"backfill", "sync-state", "--tenant", "a", "--since", "last tuesday"}, `--since "last tuesday"`},
		{[]string{"backfill", "sync-state", "--tenant", "a", "--batch", "0"}, "--batch 0"},
		{[]string{"xref", "set", "--tenant", "a", "--kind", "contact"}, "--key, --sage-id required"},
		{[]string{"policy", "get"}, "--tenant is required"},
		{[]string{"policy", "set", "--tenant", "a"}, "--file is required"},
		{[]string{"policy", "set", "--tenant", "a", "--file", "/does/not/exist.json"}, "--file: open /does/not/exist.json"},
		{[]string{"refdata", "refresh"}, "--tenant is required"},
		{[]string{"dlq", "list", "--limit", "5000"}, "--limit 5000"},
		{[]string{"dlq", "replay", "--until", "soon"}, `--until "soon"`},
		{[]string{"dlq", "purge"}, "dlq purge: give at least one filter"},
	} {
		stdout, stderr, code := ledgerctl(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("ledgerctl %v: exit %d, stderr %q; want exit 2 containing %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestRunsShowAndRetry(t *testing.T) {
	f, addr := startFake(t)
	t.Setenv("LEDGER_ADMIN_TOKEN", token)
	stdout, stderr, code := ledgerctl(t, "--addr", addr, "runs", "show", "r1")
	if code != exitOK || !strings.Contains(stdout, "validation/payment_method_not_mapped") || !strings.Contains(stdout, "POST /sales_invoices") ||
		!strings.Contains(stdout, "line_items.0.ledger_account_id") || !strings.Contains(stdout, "Attempt 2 response:") {
		t.Fatalf("runs show: %d %s\n%s", code, stderr, stdout)
	}
	if !strings.Contains(stdout, "Quirks applied: s7_line_tax, s23_contact_reference") || strings.Contains(stdout, "000000042") {
		t.Fatalf("runs show without --payloads:\n%s", stdout)
	}
	stdout, _, code = ledgerctl(t, "--addr", addr, "runs", "show", "r1", "--payloads")
	if code != exitOK || !strings.Contains(stdout, "Magento entity as fetched:\n{\n  \"entity_id\": 42,") ||
		!strings.Contains(stdout, "Sage request as built:\n(not recorded)") {
		t.Fatalf("runs show --payloads: %d\n%s", code, stdout)
	}
	stdout, _, code = ledgerctl(t, "--addr", addr, "runs", "retry", "r1", "r2")
	if code != exitOK || !strings.Contains(stdout, "r1: retrying") || !strings.Contains(stdout, "r2: retrying") {
		t.Fatalf("runs retry: %d\n%s", code, stdout)
	}
	if req := f.lastRequest().(*ledgerv1.RetryRunsRequest); strings.Join(req.GetSyncRunIds(), ",") != "r1,r2" {
		t.Fatalf("request %v", req)
	}
	stdout, stderr, code = ledgerctl(t, "--addr", addr, "runs", "retry", "r1", "busy")
	if code != exitFailure || !strings.Contains(stdout, "busy: not retried: run busy is running now") || !strings.Contains(stderr, "1 of 2 runs were not retried") {
		t.Fatalf("partial retry: %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestBackfillProgress(t *testing.T) {
	f, addr := startFake(t)
	t.Setenv("LEDGER_ADMIN_TOKEN", token)
	stdout, stderr, code := ledgerctl(t, "--addr", addr, "backfill", "sync-state", "--tenant", "acme", "--entity", "invoice,creditmemo",
		"--since", "2026-01-01", "--rate", "500")
	if code != exitOK || !strings.Contains(stdout, "backfill complete: 300 pushed") {
		t.Fatalf("backfill: %d\n%s\n%s", code, stdout, stderr)
	}
	// Not a terminal: the bar prints plain lines, the first and the last at least.
	if !strings.Contains(stderr, "resuming the backfill") || !strings.Contains(stderr, "100% 300/300") || !strings.Contains(stderr, "[####") {
		t.Fatalf("progress output:\n%s", stderr)
	}
	req := f.lastRequest().(*ledgerv1.BackfillSyncStateRequest)
	if strings.Join(req.GetEntityTypes(), ",") != "invoice,creditmemo" || req.GetRate() != 500 || req.GetSince().AsTime().Format("2006-01-02") != "2026-01-01" ||
		req.GetBatchSize() != 1000 || req.GetDryRun() {
		t.Fatalf("request %v", req)
	}
	stdout, _, code = ledgerctl(t, "--addr", addr, "backfill", "sync-state", "--tenant", "acme", "--dry-run")
	if code != exitOK || strings.TrimSpace(stdout) != "dry run: would push 300 succeeded runs" {
		t.Fatalf("dry run: %d %q", code, stdout)
	}
	_, stderr, code = ledgerctl(t, "--addr", addr, "backfill", "sync-state", "--tenant", "stall")
	if code != exitFailure || !strings.Contains(stderr, "the shop confirmed no sync state") {
		t.Fatalf("stalled: %d\n%s", code, stderr)
	}
	stdout, _, code = ledgerctl(t, "--addr", addr, "--json", "backfill", "sync-state", "--tenant", "acme")
	if code != exitOK || strings.Count(stdout, "\n") != 4 || !strings.Contains(stdout, `"done":true`) {
		t.Fatalf("json lines: %d\n%s", code, stdout)
	}
}

func TestXrefPolicyRefdata(t *testing.T) {
	f, addr := startFake(t)
	t.Setenv("LEDGER_ADMIN_TOKEN", token)
	stdout, _, code := ledgerctl(t, "--addr", addr, "xref", "set", "--tenant", "acme", "--kind", "contact", "--key", "M42",
		"--currency", "gbp", "--sage-id", "new-contact", "--reference", "M42")
	if code != exitOK || !strings.Contains(stdout, "Relinked contact M42 (GBP) to Sage new-contact (was old-contact)") {
		t.Fatalf("xref set: %d\n%s", code, stdout)
	}
	if req := f.lastRequest().(*ledgerv1.SetXrefRequest); req.GetMagentoKey() != "M42" || req.GetReference() != "M42" || req.GetKind() != "contact" {
		t.Fatalf("request %v", req)
	}
	stdout, _, code = ledgerctl(t, "--addr", addr, "policy", "get", "--tenant", "acme")
	if code != exitOK || !strings.Contains(stdout, `"sync_products": true`) {
		t.Fatalf("policy get: %d\n%s", code, stdout)
	}
	file := filepath.Join(t.TempDir(), "p.json")
	_ = os.WriteFile(file, []byte(`{"invoice_number_prefix":"MG"}`), 0o600)
	stdout, _, code = ledgerctl(t, "--addr", addr, "policy", "set", "--tenant", "acme", "--file", file)
	if code != exitOK || !strings.Contains(stdout, "Policy of acme stored") {
		t.Fatalf("policy set: %d\n%s", code, stdout)
	}
	_ = os.WriteFile(file, []byte(`{"colour":"blue"}`), 0o600)
	_, stderr, code := ledgerctl(t, "--addr", addr, "policy", "set", "--tenant", "acme", "--file", file)
	if code != exitFailure || !strings.Contains(stderr, `unknown field "colour"`) {
		t.Fatalf("bad policy: %d\n%s", code, stderr)
	}
	stdout, _, code = ledgerctl(t, "--addr", addr, "refdata", "refresh", "--tenant", "acme")
	if code != exitOK || !strings.Contains(stdout, "ledger_accounts  40") || strings.Index(stdout, "bank_accounts") > strings.Index(stdout, "tax_rates") {
		t.Fatalf("refdata refresh: %d\n%s", code, stdout)
	}
}

func TestDLQListAndReplay(t *testing.T) {
	f, addr := startFake(t)
	t.Setenv("LEDGER_ADMIN_TOKEN", token)
	stdout, _, code := ledgerctl(t, "--addr", addr, "dlq", "list", "--tenant", "acme", "--stage", "mapper", "--code", "payment_method_not_mapped",
		"--since", "24h", "--run", "r1,r2")
	if code != exitOK || !strings.Contains(stdout, "validation/payment_method_not_mapped") || !strings.Contains(stdout, "map checkmo") {
		t.Fatalf("dlq list: %d\n%s", code, stdout)
	}
	req := f.lastRequest().(*ledgerv1.ListDeadLettersRequest)
	if fl := req.GetFilter(); fl.GetTenantId() != "acme" || fl.GetStage() != "mapper" || len(fl.GetSyncRunIds()) != 2 || fl.GetSince() == nil || req.GetLimit() != 100 {
		t.Fatalf("request %v", req)
	}
	stdout, _, code = ledgerctl(t, "--addr", addr, "dlq", "replay", "--tenant", "acme", "--dry-run")
	if code != exitOK || !strings.Contains(stdout, "3 dead letters would be replayed") {
		t.Fatalf("dry run: %d\n%s", code, stdout)
	}
	stdout, stderr, code := ledgerctl(t, "--addr", addr, "dlq", "replay", "--tenant", "acme", "--rate", "10")
	if code != exitFailure || !strings.Contains(stdout, "replayed 2 of 3") || !strings.Contains(stderr, "1 dead letters were not replayed") ||
		!strings.Contains(stderr, "100% 3/3") {
		t.Fatalf("replay: %d\n%s\n%s", code, stdout, stderr)
	}
}
