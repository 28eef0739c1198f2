package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/policy"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// TestBooksAfterTheFirstSync runs two invoices through the whole pipeline
// whose Sage books only stay true if Ledger accounts for what happened to
// them after they were created:
//
//   - invoice C, open, is credited (24.00 of 39.00) and then paid: the credit
//     note is set against the open invoice, and the receipt pays the 15.00
//     left, not Magento's grand_total (Sage would refuse the over-allocation);
//   - invoice D, paid, on which an extension applied a 10.00 gift card the
//     feed does not itemise (grand_total 29.00 for 39.00 of goods): with the
//     policy's unitemised_credit it is booked at 39.00, the 10.00 received
//     from the clearing account and the 29.00 from the card's account.
//
// Both end with nothing outstanding, every run synced, no duplicate.
func TestBooksAfterTheFirstSync(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end; skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	st, _ := startStack(t, ctx, stack.Options{})
	defer st.Close()
	const tenant = "books-shop"
	if err := st.Onboard(ctx, tenant, "Books shop"); err != nil {
		t.Fatalf("onboarding: %v", err)
	}
	var card, clearing, prefix string
	editPolicy(t, ctx, st, tenant, func(p *policy.Policy, banks []string) {
		if len(banks) < 2 {
			t.Fatalf("the business has %d bank accounts; the test needs 2", len(banks))
		}
		card, clearing, prefix = banks[0], banks[1], p.InvoiceNumberPrefix
		p.SyncUnpaidInvoices = true
		p.PaymentMethodMap = map[string]string{"stripe_payments": card}
		p.UnitemisedCredit = &policy.UnitemisedCredit{BankAccountID: clearing, MaxShare: money.MustParse("0.50")}
	})
	shop := st.Shop
	settled := func(what string, runs int64) {
		t.Helper()
		var failed int64
		devtest.Eventually(t, what, func() bool {
			c, err := st.Store.RunCounts(ctx, tenant)
			failed = c.Failed
			return err == nil && shop.OutboxCounts().Pending == 0 && c.Pending == 0 && (c.Succeeded >= runs || c.Failed > 0)
		}, devtest.Until(ctx))
		if failed > 0 {
			t.Fatalf("%s: %d runs failed (the stack log follows)", what, failed)
		}
	}

	// C: open, then credited, then paid, each settled before the next.
	const idC, cmC, idD = int64(601), int64(951), int64(602)
	invC := orderInvoice(idC, "Cat", "cat@example.com")
	invC.State = magentosim.InvoiceOpen
	if _, err := shop.CreateInvoice(invC); err != nil {
		t.Fatal(err)
	}
	settled("invoice C created", 1)
	iid := idC
	if _, err := shop.CreateCreditMemoFrom(magentosim.CreditMemo{MagentoID: cmC, InvoiceID: &iid, InvoiceIncrementID: invC.IncrementID,
		WebsiteID: 1, Currency: "GBP", Customer: invC.Customer, Lines: invC.Lines[:1], GrandTotal: num("24.00"),
		InvoiceCreatedAt: invC.CreatedAt}); err != nil {
		t.Fatal(err)
	}
	settled("credit memo of C", 2)
	if err := shop.PayInvoice(idC); err != nil {
		t.Fatal(err)
	}
	settled("invoice C paid", 3)

	// D: paid, 10.00 short of its goods.
	invD := orderInvoice(idD, "Dan", "dan@example.com")
	invD.GrandTotal = num("29.00")
	if _, err := shop.CreateInvoice(invD); err != nil {
		t.Fatal(err)
	}
	settled("invoice D created and paid", 5)

	biz := st.Sage.LeadBusinessID()
	for _, inv := range st.Sage.Invoices(biz) {
		if !inv.TotalAmount.Equal(money.MustParse("39.00")) || !inv.OutstandingAmount.IsZero() {
			t.Errorf("invoice %s: total %s outstanding %s, want 39.00 and nothing outstanding", inv.Reference, inv.TotalAmount, inv.OutstandingAmount)
		}
	}
	type receipt struct{ ref, bank, total string }
	var got []receipt
	for _, p := range st.Sage.Payments(biz) {
		if p.DeletedAt == nil && p.TransactionType.ID == "CUSTOMER_RECEIPT" {
			got = append(got, receipt{p.Reference, p.BankAccount.ID, p.TotalAmount.String()})
		}
	}
	refC, refD := prefix+invC.IncrementID, prefix+invD.IncrementID
	want := map[receipt]bool{
		{refC, card, "15.00"}:             true, // 39.00 − the 24.00 credit note
		{refD + "-CR", clearing, "10.00"}: true, // the unitemised gift card
		{refD, card, "29.00"}:             true, // what the customer paid
	}
	if len(got) != len(want) {
		t.Fatalf("receipts %+v, want %v", got, want)
	}
	for _, r := range got {
		if !want[r] {
			t.Errorf("receipt %+v not expected (want %v)", r, want)
		}
	}
	if d := st.SageDuplicates(); d != 0 {
		t.Errorf("%d duplicate documents in Sage", d)
	}
	// The runs are settled; their sync states reach the shop after them
	// (statecallback delivers a batch at a time).
	for _, e := range []stack.Expected{{EntityType: "invoice", MagentoID: idC}, {EntityType: "creditmemo", MagentoID: cmC},
		{EntityType: "invoice", MagentoID: idD}} {
		devtest.Eventually(t, fmt.Sprintf("sync-state row of %s %d synced", e.EntityType, e.MagentoID), func() bool {
			row, ok := shop.SyncState(e.EntityType, e.MagentoID)
			return ok && row.SyncStatus == "synced"
		}, devtest.Until(ctx))
	}
}
