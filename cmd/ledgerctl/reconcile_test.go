package main

import (
	"context"
	"strings"
	"testing"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

func (f *fakeAdmin) Reconcile(ctx context.Context, r *ledgerv1.ReconcileRequest) (*ledgerv1.ReconcileResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	return &ledgerv1.ReconcileResponse{Since: r.GetSince(), HighWater: created, Examined: 2,
		Listed: map[string]int32{"sales_invoices": 2, "sales_invoices:deleted": 0},
		Findings: []*ledgerv1.ReconcileFinding{{Code: "sage_document_voided", SageResource: "sales_invoices", SageId: "s1",
			XrefKind: "invoice", MagentoKey: "42", Currency: "GBP", SageAmount: "12.00", LastSeenAt: created,
			Message: "Sage sales invoice SI-1 (id s1) of Magento invoice 42 was voided in Sage."}}}, nil
}

func (f *fakeAdmin) GetDailyTotals(ctx context.Context, r *ledgerv1.GetDailyTotalsRequest) (*ledgerv1.GetDailyTotalsResponse, error) {
	if err := f.auth(ctx, r); err != nil {
		return nil, err
	}
	return &ledgerv1.GetDailyTotalsResponse{Totals: []*ledgerv1.DailyTotal{{Day: "2026-11-20", Currency: "GBP", Invoices: 2,
		MagentoInvoiced: "24.00", SageInvoiced: "12.00", Difference: "-12.00"}}}, nil
}

// ledgerctl reconcile --tenant T --since DATE (the words) is
// reconcile run; its findings print with their codes and messages.
func TestReconcileCommands(t *testing.T) {
	f, addr := startFake(t)
	t.Setenv("LEDGER_ADMIN_TOKEN", token)
	for _, args := range [][]string{
		{"--addr", addr, "reconcile", "--tenant", "acme", "--since", "2026-11-01"},
		{"--addr", addr, "reconcile", "run", "--tenant", "acme", "--since", "2026-11-01"},
	} {
		stdout, stderr, code := ledgerctl(t, args...)
		if code != exitOK || !strings.Contains(stdout, "sage_document_voided  sales_invoice s1  invoice 42") ||
			!strings.Contains(stdout, "sage_document_voided s1: Sage sales invoice SI-1") || !strings.Contains(stdout, " sales_invoices=2;") {
			t.Fatalf("%v: %d %s\n%s", args, code, stderr, stdout)
		}
		if req := f.lastRequest().(*ledgerv1.ReconcileRequest); req.GetTenantId() != "acme" || req.GetSince().AsTime().Format("2006-01-02") != "2026-11-01" {
			t.Fatalf("request %v", req)
		}
	}
	stdout, _, code := ledgerctl(t, "--addr", addr, "reconcile", "totals", "--tenant", "acme", "--from", "2026-11-01")
	if code != exitOK || !strings.Contains(stdout, "2026-11-20  GBP       2         24.00    12.00  -12.00") {
		t.Fatalf("totals: %d\n%s", code, stdout)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"reconcile", "--since", "2026-11-01"}, "reconcile run: --tenant is required"},
		{[]string{"reconcile", "run", "--tenant", "a", "--since", "last week"}, `--since "last week"`},
		{[]string{"reconcile", "findings", "--tenant", "a", "--limit", "0"}, "--limit 0"},
	} {
		stdout, stderr, code := ledgerctl(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("ledgerctl %v: exit %d, stderr %q; want exit 2 containing %q", tc.args, code, stderr, tc.want)
		}
	}
}
