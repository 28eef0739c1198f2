package main

import (
	"context"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/policy"
	"github.com/ledgersync/ledger/libs/sage"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/admin"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// TestReconcileAgreesWithThePipeline reconciles what the real pipeline wrote
// (the mapper's bodies with every quirk rule, the writer's links): invoices
// open and paid, credit memos refunded and allocated, all agree with Sage and
// Magento, so a pass finds nothing; an invoice voided in Sage afterwards is
// the next pass's one finding.
func TestReconcileAgreesWithThePipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end; skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	st, _ := startStack(t, ctx, stack.Options{})
	defer st.Close()
	const tenant = "recon-shop"
	if err := st.Onboard(ctx, tenant, "Reconciled shop"); err != nil {
		t.Fatalf("onboarding: %v", err)
	}
	// Paid invoices are received into the first bank account.
	editPolicy(t, ctx, st, tenant, func(p *policy.Policy, banks []string) {
		p.SyncUnpaidInvoices, p.DefaultBankAccountID = true, banks[0]
	})

	shop := st.Shop
	seed := shop.Seed(rand.New(rand.NewPCG(7, 12)), magentosim.Options{Customers: 15, Invoices: 40, GuestShare: 0.2, PaidShare: 0.4})
	var open, paid []int64
	for _, id := range seed.InvoiceIDs {
		if inv, _ := shop.Invoice(id); inv.State == magentosim.InvoicePaid {
			paid = append(paid, id)
		} else {
			open = append(open, id)
		}
	}
	if len(open) < 4 || len(paid) < 3 {
		t.Fatalf("seeded %d open and %d paid invoices", len(open), len(paid))
	}
	runs := int64(len(seed.CustomerIDs) + len(seed.InvoiceIDs) + len(paid))
	waitRuns := func(what string, n int64) {
		t.Helper()
		var c struct{ failed, succeeded int64 }
		devtest.Eventually(t, what, func() bool {
			counts, err := st.Store.RunCounts(ctx, tenant)
			c.failed, c.succeeded = counts.Failed, counts.Succeeded
			return err == nil && shop.OutboxCounts().Pending == 0 && counts.Pending == 0 && (counts.Succeeded >= n || counts.Failed > 0)
		}, devtest.Until(ctx))
		if c.failed > 0 {
			t.Fatalf("%s: %d runs failed (the stack log follows)", what, c.failed)
		}
	}
	waitRuns("the seeded customers and invoices synced", runs)
	// Credit memos once their invoices are in Sage: refunds of paid invoices,
	// allocations against open ones.
	for _, id := range []int64{paid[0], paid[1], open[0], open[1]} {
		if _, err := shop.CreateCreditMemo(id, "returned"); err != nil {
			t.Fatal(err)
		}
	}
	waitRuns("the credit memos synced", runs+4)

	client, closeClient, err := st.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer closeClient()
	first, err := client.Reconcile(ctx, &ledgerv1.ReconcileRequest{TenantId: tenant, Since: timestamppb.New(time.Now().Add(-time.Hour))})
	if err != nil {
		t.Fatalf("first pass: %v", err)
	}
	t.Logf("first pass: listed %v, examined %d", first.GetListed(), first.GetExamined())
	// Every invoice and receipt, the four credit notes and the two refunds.
	if want := int32(len(seed.InvoiceIDs) + len(paid) + 4 + 2); first.GetExamined() != want {
		t.Fatalf("examined %d of Ledger's documents, want %d", first.GetExamined(), want)
	}
	if len(first.GetFindings()) != 0 {
		t.Fatalf("the pipeline's own books: %d findings, the first: %v", len(first.GetFindings()), first.GetFindings()[0])
	}

	// The merchant voids an open invoice in Sage.
	target, err := st.Store.Xref(ctx, tenant, "invoice", itoa64(open[2]), "GBP")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := st.Store.Tokens(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	sc := &sage.Client{BaseURL: st.SageEndpoints().APIURL, Tokens: sage.StaticToken(tok.Access), BusinessID: st.Sage.LeadBusinessID()}
	if resp, err := sc.Do(ctx, http.MethodDelete, "/sales_invoices/"+target.SageID+"?void_reason=Cancelled+by+phone", nil); err != nil || resp.Status != http.StatusOK {
		t.Fatalf("voiding: %v %v", resp, err)
	}
	second, err := client.Reconcile(ctx, &ledgerv1.ReconcileRequest{TenantId: tenant})
	if err != nil {
		t.Fatalf("second pass: %v", err)
	}
	if fs := second.GetFindings(); len(fs) != 1 || fs[0].GetCode() != admin.CodeSageDocumentVoided || fs[0].GetSageId() != target.SageID ||
		fs[0].GetMagentoKey() != itoa64(open[2]) {
		t.Fatalf("after the void: %v", fs)
	}
}
