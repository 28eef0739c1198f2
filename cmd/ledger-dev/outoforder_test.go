package main

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/policy"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// TestOutOfOrderDelivery delivers a shop's events in the worst order Magento
// allows (it guarantees none: a failed invoice.created comes back after its
// invoice.paid) through the whole pipeline — ingest, mapper, sage-writer,
// statecallback — and checks Sage and Magento's sync-state mirror:
//
//   - invoice A: invoice.paid, then invoice.created;
//   - invoice B: its credit memo's creditmemo.created first, then
//     invoice.created and invoice.paid.
//
// Each Magento document must end as exactly one Sage document (one invoice,
// one receipt, one credit note — and one refund, since B's money went back),
// with nothing outstanding where Magento says paid, and every sync-state row
// synced.
func TestOutOfOrderDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("the out-of-order pipeline run is skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	st, _ := startStack(t, ctx, stack.Options{})
	defer st.Close()
	const tenant = "ooo-shop"
	if err := st.Onboard(ctx, tenant, "Out-of-order shop"); err != nil {
		t.Fatalf("onboarding: %v", err)
	}

	// Pay by card into the business's first bank account.
	editPolicy(t, ctx, st, tenant, func(p *policy.Policy, banks []string) {
		p.PaymentMethodMap = map[string]string{"stripe_payments": banks[0]}
	})

	// Queue the events in the wrong order while the shop's cron is paused: an
	// event queued first keeps its place, and the observer's own copy of it is
	// dropped as a duplicate key.
	shop := st.Shop
	shop.SetDown(true)
	const idA, idB, cmB = int64(501), int64(502), int64(901)
	enqueue := func(name string, id int64) {
		t.Helper()
		if err := shop.Enqueue(magentosim.Event{Name: name, IdempotencyKey: name + ":" + itoa64(id), MagentoEntityID: id,
			WebsiteID: 1, StoreID: 1, Payload: struct{}{}, MirrorProvider: magento.ProviderSage}); err != nil {
			t.Fatal(err)
		}
	}
	enqueue("invoice.paid", idA)
	invA := orderInvoice(idA, "Ann", "ann@example.com")
	if _, err := shop.CreateInvoice(invA); err != nil {
		t.Fatal(err)
	}
	enqueue("creditmemo.created", cmB)
	invB := orderInvoice(idB, "Bob", "  Bob.Guest@Example.COM ")
	if _, err := shop.CreateInvoice(invB); err != nil {
		t.Fatal(err)
	}
	iid := idB
	cm, err := shop.CreateCreditMemoFrom(magentosim.CreditMemo{MagentoID: cmB, InvoiceID: &iid, InvoiceIncrementID: invB.IncrementID,
		WebsiteID: 1, Currency: "GBP", Customer: invB.Customer, Lines: invB.Lines[:1],
		AdjustmentPositive: num("2.00"), AdjustmentNegative: num("0.50"), GrandTotal: num("25.50"),
		Reason: "Returned &amp; refunded", InvoiceCreatedAt: invB.CreatedAt})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range shop.Outbox() {
		order = append(order, r.IdempotencyKey)
	}
	t.Logf("outbox order: %v", order)
	shop.SetDown(false)

	want := []stack.Expected{{EntityType: "invoice", MagentoID: idA, Status: "synced"},
		{EntityType: "invoice", MagentoID: idB, Status: "synced"}, {EntityType: "creditmemo", MagentoID: cm.MagentoID, Status: "synced"}}
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
	defer wcancel()
	sum := st.WaitSettled(wctx, want)
	if !sum.OK() {
		t.Fatalf("pipeline did not settle: %+v", sum)
	}
	// The later events of each document settle after the first; wait for the
	// whole outbox to be delivered and every run to finish.
	devtest.Eventually(t, "every outbox row delivered", func() bool { return shop.OutboxCounts().Pending == 0 }, devtest.Until(ctx))
	devtest.Eventually(t, "every run finished", func() bool {
		c, err := st.Store.RunCounts(ctx, tenant)
		return err == nil && c.Pending == 0 && c.Succeeded >= 5
	}, devtest.Until(ctx))

	biz := st.Sage.LeadBusinessID()
	invoices := st.Sage.Invoices(biz)
	notes := st.Sage.CreditNotes(biz)
	var receipts, refunds int
	for _, p := range st.Sage.Payments(biz) {
		if p.DeletedAt != nil {
			continue
		}
		switch p.TransactionType.ID {
		case "CUSTOMER_RECEIPT":
			receipts++
		case "CUSTOMER_REFUND":
			refunds++
		}
	}
	if len(invoices) != 2 || len(notes) != 1 || receipts != 2 || refunds != 1 {
		t.Fatalf("Sage holds %d invoices, %d credit notes, %d receipts, %d refunds; want 2, 1, 2, 1",
			len(invoices), len(notes), receipts, refunds)
	}
	for _, inv := range invoices {
		if !inv.OutstandingAmount.IsZero() {
			t.Errorf("invoice %s: %s outstanding, but Magento says paid", inv.Reference, inv.OutstandingAmount)
		}
	}
	if n := notes[0]; !n.TotalAmount.Equal(money.MustParse("25.50")) || !n.OutstandingAmount.IsZero() {
		t.Errorf("credit note: total %s outstanding %s, want 25.50 refunded", n.TotalAmount, n.OutstandingAmount)
	}
	if d := st.SageDuplicates(); d != 0 {
		t.Errorf("%d duplicate documents in Sage", d)
	}
	// The sync states reach the shop after the runs finish (statecallback
	// delivers a batch at a time).
	for _, e := range want {
		devtest.Eventually(t, fmt.Sprintf("sync-state row of %s %d synced", e.EntityType, e.MagentoID), func() bool {
			row, ok := shop.SyncState(e.EntityType, e.MagentoID)
			return ok && row.SyncStatus == "synced"
		}, devtest.Until(ctx))
	}
}

// orderInvoice is a paid, card-paid GBP invoice of two standard-rated lines
// and taxed shipping: 20.00 + 4.00, 7.50 + 1.50, shipping 5.00 + 1.00 = 39.00.
func orderInvoice(id int64, first, email string) magento.Invoice {
	bill := magento.Address{Kind: "billing", Street: []string{"1 High Street"}, City: "Leeds", Postcode: "LS1 1AA", CountryID: "GB"}
	ship := bill
	ship.Kind = "shipping"
	inv := magento.Invoice{MagentoID: id, WebsiteID: 1, StoreID: 1, Currency: "GBP", State: magentosim.InvoicePaid,
		Customer:       magento.Contact{Email: email, FirstName: first, LastName: "Example", Addresses: []magento.Address{bill}},
		BillingAddress: &bill, ShippingAddress: &ship, PaymentMethod: "stripe_payments",
		ShippingAmount: num("5.00"), ShippingTaxAmount: num("1.00"), CreatedAt: "2026-05-01T10:00:00Z"}
	one := num("1")
	inv.BaseToOrderRate = &one
	inv.Lines = []magento.InvoiceLine{
		magentosim.BuildLine("MUG", "Ledger&trade; Mug", "simple", 2, money.MustParse("10.00"), money.MustParse("0.2")),
		magentosim.BuildLine("TEA", "Tea &amp; Biscuits", "simple", 1, money.MustParse("7.50"), money.MustParse("0.2")),
	}
	magentosim.Totals(&inv)
	inv.IncrementID = "00000" + itoa64(id)
	return inv
}

func num(s string) money.Number { return money.Number{Amount: money.MustParse(s)} }

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
