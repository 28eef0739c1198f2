package sagesim

import (
	"net/http"
	"testing"
)

func creditNoteBody(contactID string, lines ...map[string]any) map[string]any {
	return map[string]any{"sales_credit_note": map[string]any{
		"contact_id": contactID, "date": "2026-01-20", "original_invoice_date": "2026-01-15", "reference": "CM-100000042",
		"main_address":      map[string]any{"address_line_1": "1 High Street", "country_id": "GB"},
		"delivery_address":  map[string]any{"address_line_1": "1 High Street", "country_id": "GB"},
		"credit_note_lines": lines, "shipping_net_amount": "0", "shipping_tax_rate_id": "GB_ZERO",
	}}
}

func (e *env) createCreditNote(body map[string]any) SalesCreditNote {
	e.t.Helper()
	var cn SalesCreditNote
	mustJSON(e.t, e.expect(http.StatusCreated, "POST", "/sales_credit_notes", body), &cn)
	return cn
}

func TestSalesCreditNoteLifecycle(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("Ada", "M1")
	ledger := e.salesLedger()
	cn := e.createCreditNote(creditNoteBody(c.ID, goodLine(ledger, "Returned widget", "10.00", "2.00")))
	if cn.CreditNoteNumber != "SCN-1" || cn.TotalAmount.String() != "12.00" || cn.OutstandingAmount.String() != "12.00" ||
		cn.Status.ID != "UNPAID" || cn.OriginalInvoiceDate == nil || *cn.OriginalInvoiceDate != "2026-01-15" ||
		len(cn.CreditNoteLines) != 1 || cn.Path != "/sales_credit_notes/"+cn.ID {
		t.Fatalf("created %+v", cn)
	}
	if e.balance(c.ID) != "-12.00" {
		t.Fatalf("balance %s", e.balance(c.ID))
	}
	// Lines follow the invoice rules, with line_items.* sources and the umbrella.
	bad := goodLine(ledger, "Widget&trade;", "10.00", "2.00")
	errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/sales_credit_notes", creditNoteBody(c.ID, bad)))
	if len(errs) != 2 || errs[0] != umbrellaLineError || errs[1].Source != "line_items.description" {
		t.Fatalf("entity: %+v", errs)
	}
	body := creditNoteBody(c.ID)
	delete(body["sales_credit_note"].(map[string]any), "credit_note_lines")
	if errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/sales_credit_notes", body)); errs[0] != required("credit_note_lines") {
		t.Fatalf("no lines: %+v", errs)
	}

	// PUT changes only what it sends; lines are replaced as a whole.
	var upd SalesCreditNote
	mustJSON(t, e.expect(http.StatusOK, "PUT", "/sales_credit_notes/"+cn.ID, map[string]any{"sales_credit_note": map[string]any{
		"notes": "partial return", "credit_note_lines": []any{goodLine(ledger, "Returned widget", "5.00", "1.00")}}}), &upd)
	if upd.ID != cn.ID || upd.CreditNoteNumber != "SCN-1" || upd.TotalAmount.String() != "6.00" || upd.Notes != "partial return" ||
		upd.Reference != "CM-100000042" || e.balance(c.ID) != "-6.00" {
		t.Fatalf("updated %+v balance %s", upd, e.balance(c.ID))
	}

	// Filters.
	other := e.customer("Bob", "M2")
	e.createCreditNote(creditNoteBody(other.ID, goodLine(ledger, "Other", "1.00", "0.20")))
	if page := e.list("/sales_credit_notes?contact_id=" + c.ID); page.Total != 1 {
		t.Fatalf("contact filter %+v", page)
	}
	if page := e.list("/sales_credit_notes?from_date=2026-01-21"); page.Total != 0 {
		t.Fatalf("from_date filter %+v", page)
	}
	if page := e.list("/sales_credit_notes?search=bob"); page.Total != 1 {
		t.Fatalf("search %+v", page)
	}

	// DELETE voids with a reason.
	e.expect(http.StatusUnprocessableEntity, "DELETE", "/sales_credit_notes/"+cn.ID, nil)
	var voided SalesCreditNote
	mustJSON(t, e.expect(http.StatusOK, "DELETE", "/sales_credit_notes/"+cn.ID+"?void_reason=Duplicate", nil), &voided)
	if voided.Status.ID != "VOID" || voided.OutstandingAmount.String() != "0.00" || e.balance(c.ID) != "0.00" {
		t.Fatalf("voided %+v balance %s", voided.Status, e.balance(c.ID))
	}
	e.expect(http.StatusUnprocessableEntity, "PUT", "/sales_credit_notes/"+cn.ID, map[string]any{"sales_credit_note": map[string]any{"notes": "x"}})
	if page := e.list("/sales_credit_notes?status_id=VOID"); page.Total != 1 {
		t.Fatalf("status filter %+v", page)
	}
	if n := len(e.sim.CreditNotes(e.sim.LeadBusinessID())); n != 2 {
		t.Fatalf("inspection: %d credit notes", n)
	}
}

func TestSalesInvoicePut(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("Ada", "M1")
	ledger := e.salesLedger()
	inv := e.createInvoice(goodInvoice(c.ID, goodLine(ledger, "Widget", "20.00", "4.00")))
	var upd SalesInvoice
	mustJSON(t, e.expect(http.StatusOK, "PUT", "/sales_invoices/"+inv.ID, map[string]any{"sales_invoice": map[string]any{
		"reference": "100000043", "invoice_lines": []any{goodLine(ledger, "Widget", "30.00", "6.00")}}}), &upd)
	if upd.ID != inv.ID || upd.InvoiceNumber != inv.InvoiceNumber || upd.TotalAmount.String() != "36.00" ||
		upd.Reference != "100000043" || upd.DeliveryAddress.AddressLine1 != "7 Mill Lane" || !upd.CreatedAt.Equal(inv.CreatedAt) {
		t.Fatalf("updated %+v", upd)
	}
	if e.balance(c.ID) != "36.00" {
		t.Fatalf("balance %s", e.balance(c.ID))
	}
	// The merged document is validated again, quirks included.
	errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "PUT", "/sales_invoices/"+inv.ID, map[string]any{"sales_invoice": map[string]any{
		"invoice_lines": []any{map[string]any{"description": "Widget", "ledger_account_id": ledger, "unit_price": "1.00", "tax_rate_id": "GB_STANDARD"}}}}))
	if errs[0] != umbrellaLineError {
		t.Fatalf("invalid PUT: %+v", errs)
	}
	e.expect(http.StatusNotFound, "PUT", "/sales_invoices/00000000000000000000000000000000", map[string]any{"sales_invoice": map[string]any{}})

	// Once part paid, the total cannot fall below what was paid.
	e.pay("CUSTOMER_RECEIPT", c.ID, "30.00", inv.ID, "30.00")
	errs = errorsOf(t, e.expect(http.StatusUnprocessableEntity, "PUT", "/sales_invoices/"+inv.ID, map[string]any{"sales_invoice": map[string]any{
		"invoice_lines": []any{goodLine(ledger, "Widget", "10.00", "2.00")}}}))
	if errs[0].Source != "total_amount" {
		t.Fatalf("below paid: %+v", errs)
	}
	mustJSON(t, e.expect(http.StatusOK, "PUT", "/sales_invoices/"+inv.ID, map[string]any{"sales_invoice": map[string]any{"notes": "thanks"}}), &upd)
	if upd.Status.ID != "PART_PAID" || upd.OutstandingAmount.String() != "6.00" || upd.TotalPaid.String() != "30.00" {
		t.Fatalf("after payment %+v", upd)
	}
	// An invoice with payments cannot be voided.
	e.expect(http.StatusUnprocessableEntity, "DELETE", "/sales_invoices/"+inv.ID+"?void_reason=x", nil)
}
