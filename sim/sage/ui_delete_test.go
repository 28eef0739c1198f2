package sagesim

import (
	"net/http"
	"testing"
	"time"
)

// Reconciliation reads what changed and what was deleted: updated_or_created_since
// shows voids (updated_at moves), deleted_since (exclusive) shows deleted
// payments and documents deleted in the web app, and neither shows the rest.
func TestListsShowVoidsAndDeletions(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("Ada Lovelace", "M1")
	ledger := e.salesLedger()
	void := e.createInvoice(goodInvoice(c.ID, goodLine(ledger, "Widget", "10.00", "2.00")))
	gone := e.createInvoice(goodInvoice(c.ID, goodLine(ledger, "Widget", "20.00", "4.00")))
	paid := e.createInvoice(goodInvoice(c.ID, goodLine(ledger, "Widget", "30.00", "6.00")))
	untouched := e.createInvoice(goodInvoice(c.ID, goodLine(ledger, "Widget", "40.00", "8.00")))
	pay := e.pay("CUSTOMER_RECEIPT", c.ID, "36.00", paid.ID, "36.00")

	e.sim.Advance(time.Minute)
	mark := e.sim.Now().Format(time.RFC3339)
	e.sim.Advance(time.Minute)
	e.expect(http.StatusOK, "DELETE", "/sales_invoices/"+void.ID+"?void_reason=Duplicate", nil)
	if err := e.sim.DeleteInWebApp(e.sim.LeadBusinessID(), gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.DeleteInWebApp(e.sim.LeadBusinessID(), paid.ID); err == nil {
		t.Fatal("deleted an invoice with a payment on it")
	}
	e.expect(http.StatusNoContent, "DELETE", "/contact_payments/"+pay.ID, nil)
	e.expect(http.StatusNotFound, "GET", "/sales_invoices/"+gone.ID, nil)

	changed := e.list("/sales_invoices?updated_or_created_since=" + mark + "&attributes=status,outstanding_amount")
	got := map[string]string{}
	for _, it := range changed.Items {
		got[it["id"].(string)] = it["status"].(map[string]any)["id"].(string)
	}
	// The voided invoice, and the paid one the deleted payment reopened.
	if len(got) != 2 || got[void.ID] != "VOID" || got[paid.ID] != "UNPAID" {
		t.Fatalf("changed since %s: %v (void %s, paid %s, untouched %s)", mark, got, void.ID, paid.ID, untouched.ID)
	}
	deleted := e.list("/sales_invoices?deleted_since=" + mark + "&attributes=deleted_at")
	if deleted.Total != 1 || deleted.Items[0]["id"] != gone.ID || deleted.Items[0]["deleted_at"] == nil {
		t.Fatalf("deleted invoices: %+v", deleted)
	}
	if p := e.list("/contact_payments?deleted_since=" + mark); p.Total != 1 || p.Items[0]["id"] != pay.ID {
		t.Fatalf("deleted payments: %+v", p)
	}
	// deleted_since is exclusive.
	at := e.sim.Now().Format(time.RFC3339)
	if d := e.list("/sales_invoices?deleted_since=" + at); d.Total != 0 {
		t.Fatalf("deleted_since %s (the deletion's own second): %+v", at, d)
	}
	e.expect(http.StatusUnprocessableEntity, "GET", "/sales_invoices?deleted_since=yesterday", nil)
	// Owed: the untouched invoice (48.00) and the one the deleted payment
	// reopened (36.00); neither the void nor the deleted one.
	if b := e.balance(c.ID); b != "84.00" {
		t.Fatalf("balance %s, want 84.00", b)
	}
}
