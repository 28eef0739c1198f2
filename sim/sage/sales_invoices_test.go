package sagesim

import (
	"net/http"
	"strings"
	"testing"
)

func TestSalesInvoiceTotals(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("Ada Lovelace", "M1")
	ledger := e.salesLedger()
	line1 := goodLine(ledger, "Widget", "10.00", "4.00")
	line1["quantity"] = 2
	line2 := map[string]any{"description": "Book", "ledger_account_id": ledger, "unit_price": 5, "tax_rate_id": "GB_ZERO", "currency_tax_amount": "0"}
	p := goodInvoice(c.ID, line1, line2)
	p["shipping_net_amount"] = "4.99"
	p["shipping_tax_rate_id"] = "GB_STANDARD"
	inv := e.createInvoice(p)

	check := func(name, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	check("line 1 net", inv.InvoiceLines[0].NetAmount.String(), "20.00")
	check("line 1 total", inv.InvoiceLines[0].TotalAmount.String(), "24.00")
	check("line 2 tax", inv.InvoiceLines[1].TaxAmount.String(), "0.00")
	check("shipping tax", inv.ShippingTaxAmount.String(), "1.00") // 4.99 × 20 % = 0.998
	check("net", inv.NetAmount.String(), "29.99")
	check("tax", inv.TaxAmount.String(), "5.00")
	check("total", inv.TotalAmount.String(), "34.99")
	check("outstanding", inv.OutstandingAmount.String(), "34.99")
	check("paid", inv.TotalPaid.String(), "0.00")
	check("status", inv.Status.ID, "UNPAID")
	check("number", inv.InvoiceNumber, "SI-1")
	check("contact", inv.ContactName, "Ada Lovelace")
	if len(inv.ID) != 32 || inv.Path != "/sales_invoices/"+inv.ID || inv.DisplayedAs != "SI-1" {
		t.Errorf("identity %s %s %s", inv.ID, inv.Path, inv.DisplayedAs)
	}

	// Money is sent as numeric strings.
	raw := string(e.expect(http.StatusOK, "GET", "/sales_invoices/"+inv.ID, nil))
	if !strings.Contains(raw, `"total_amount":"34.99"`) {
		t.Errorf("money not a 2 dp string: %s", raw)
	}
	if got := e.sim.Invoices(e.sim.LeadBusinessID()); len(got) != 1 || !got[0].TotalAmount.Equal(inv.TotalAmount) {
		t.Errorf("inspection %+v", got)
	}
	// Search by contact name or reference.
	if page := e.list("/sales_invoices?search=lovelace"); page.Total != 1 || page.Items[0]["reference"] != "100000042" {
		t.Errorf("search by contact %+v", page)
	}
	if page := e.list("/sales_invoices?search=nope"); page.Total != 0 {
		t.Errorf("search miss %+v", page)
	}
}

// §32: Sage recomputes shipping VAT from the rate and ignores shipping_tax_amount.
func TestQuirkShippingTaxRecomputed(t *testing.T) {
	t.Parallel()
	naive := func(rate string) map[string]any {
		return map[string]any{"shipping_net_amount": "5.00", "shipping_tax_amount": "0", "shipping_tax_rate_id": rate}
	}
	run := func(q Quirks, rate string) string {
		e := loggedIn(t, Config{Quirks: &q})
		p := goodInvoice(e.customer("C", "C1").ID, goodLine(e.salesLedger(), "Widget", "20.00", "4.00"))
		for k, v := range naive(rate) {
			p[k] = v
		}
		return e.createInvoice(p).TotalAmount.String()
	}
	// The shop charged 24.00 + 5.00 untaxed shipping = 29.00.
	if got := run(DefaultQuirks(), "GB_STANDARD"); got != "30.00" {
		t.Errorf("naive GB_STANDARD shipping: total %s, want Sage's recomputed 30.00", got)
	}
	if got := run(DefaultQuirks(), "GB_ZERO"); got != "29.00" {
		t.Errorf("GB_ZERO shipping: total %s, want 29.00", got)
	}
	off := DefaultQuirks()
	off.ShippingTaxRecomputed = false
	if got := run(off, "GB_STANDARD"); got != "29.00" {
		t.Errorf("quirk off: total %s, want 29.00", got)
	}
}

// §17: an omitted delivery_address becomes a copy of the billing address.
func TestQuirkDeliveryAddressMirrorsBilling(t *testing.T) {
	t.Parallel()
	run := func(q Quirks, omit bool) *Address {
		e := loggedIn(t, Config{Quirks: &q})
		p := goodInvoice(e.customer("C", "C1").ID, goodLine(e.salesLedger(), "Widget", "20.00", "4.00"))
		if omit {
			delete(p, "delivery_address")
		}
		return e.createInvoice(p).DeliveryAddress
	}
	if a := run(DefaultQuirks(), true); a == nil || a.AddressLine1 != "1 High Street" {
		t.Errorf("naive: delivery %+v, want the billing address", a)
	}
	if a := run(DefaultQuirks(), false); a.AddressLine1 != "7 Mill Lane" {
		t.Errorf("explicit delivery: %+v", a)
	}
	off := DefaultQuirks()
	off.DeliveryAddressMirrorsBilling = false
	if a := run(off, true); a == nil || a.AddressLine1 != "9 Dock Road" {
		t.Errorf("quirk off: delivery %+v, want the contact's delivery address", a)
	}
}

// invoiceErrors posts payload and returns the 422 error array.
func (e *env) invoiceErrors(payload map[string]any) []APIError {
	e.t.Helper()
	return errorsOf(e.t, e.expect(http.StatusUnprocessableEntity, "POST", "/sales_invoices", map[string]any{"sales_invoice": payload}))
}

// §20: any line failure puts line_items.description "This field is required." first.
func TestQuirkUmbrellaLineError(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("C", "C1")
	line := goodLine(e.salesLedger(), "Widget", "20.00", "4.00")
	delete(line, "tax_amount") // the real cause
	errs := e.invoiceErrors(goodInvoice(c.ID, line))
	if len(errs) != 2 || errs[0] != umbrellaLineError || errs[1].Source != "line_items.tax_amount" {
		t.Fatalf("naive: %+v", errs)
	}
	if errs[0].Message != "This field is required." || errs[0].Source != "line_items.description" || errs[0].DataCode != CodeRecordInvalid {
		t.Fatalf("umbrella %+v", errs[0])
	}
	// A header-only failure has no umbrella.
	p := goodInvoice(c.ID, goodLine(e.salesLedger(), "Widget", "20.00", "4.00"))
	delete(p, "date")
	if errs := e.invoiceErrors(p); len(errs) != 1 || errs[0].Source != "date" {
		t.Fatalf("header failure: %+v", errs)
	}
	// Corrected payload passes.
	e.createInvoice(goodInvoice(c.ID, goodLine(e.salesLedger(), "Widget", "20.00", "4.00")))

	off := DefaultQuirks()
	off.UmbrellaLineError = false
	e.sim.SetQuirks(off)
	if errs := e.invoiceErrors(goodInvoice(c.ID, line)); len(errs) != 1 || errs[0].Source != "line_items.tax_amount" {
		t.Fatalf("quirk off: %+v", errs)
	}
}

// §22: HTML entities in a line description fail.
func TestQuirkHTMLEntitiesRejected(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("C", "C1")
	ledger := e.salesLedger()
	for _, desc := range []string{"Widget&trade;", "Salt &amp; Pepper", "Widget &#8482;"} {
		errs := e.invoiceErrors(goodInvoice(c.ID, goodLine(ledger, desc, "20.00", "4.00")))
		if len(errs) != 2 || errs[0] != umbrellaLineError || errs[1].Source != "line_items.description" {
			t.Errorf("%q: %+v", desc, errs)
		}
	}
	e.createInvoice(goodInvoice(c.ID, goodLine(ledger, "Widget™ & more", "20.00", "4.00")))
	off := DefaultQuirks()
	off.HTMLEntitiesRejected = false
	e.sim.SetQuirks(off)
	e.createInvoice(goodInvoice(c.ID, goodLine(ledger, "Widget&trade;", "20.00", "4.00")))
}

// §7: every line needs currency_tax_amount, zero-rated ones included.
func TestQuirkCurrencyTaxAmountRequired(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("C", "C1")
	ledger := e.salesLedger()
	naive := map[string]any{"description": "Book", "ledger_account_id": ledger, "unit_price": "5.00", "tax_rate_id": "GB_ZERO"}
	errs := e.invoiceErrors(goodInvoice(c.ID, naive))
	if len(errs) != 2 || errs[0] != umbrellaLineError || errs[1] != required("line_items.currency_tax_amount") {
		t.Fatalf("naive: %+v", errs)
	}
	naive["currency_tax_amount"] = "0.00"
	e.createInvoice(goodInvoice(c.ID, naive))
	delete(naive, "currency_tax_amount")
	off := DefaultQuirks()
	off.CurrencyTaxAmountRequired = false
	e.sim.SetQuirks(off)
	e.createInvoice(goodInvoice(c.ID, naive))
}

func TestSalesInvoiceValidation(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("C", "C1")
	ledger := e.salesLedger()
	var vendor Contact
	mustJSON(t, e.expect(http.StatusCreated, "POST", "/contacts", map[string]any{"contact": map[string]any{
		"name": "Supplier Ltd", "contact_type_ids": []string{"VENDOR"}}}), &vendor)
	var bankLedger string
	for _, a := range e.list("/ledger_accounts?visible_in=banking").Items {
		bankLedger = a["id"].(string)
	}

	good := func() map[string]any { return goodInvoice(c.ID, goodLine(ledger, "Widget", "20.00", "4.00")) }
	cases := []struct {
		name   string
		mutate func(p map[string]any)
		want   APIError
	}{
		{"vendor contact", func(p map[string]any) { p["contact_id"] = vendor.ID }, apiErr(CodeRecordInvalid, "Couldn't find Customer.", "")},
		{"contact missing", func(p map[string]any) { delete(p, "contact_id") }, required("contact_id")},
		{"bad date", func(p map[string]any) { p["date"] = "15/01/2026" }, apiErr(CodeRecordInvalid, "is not a valid date (YYYY-MM-DD)", "date")},
		{"no lines", func(p map[string]any) { p["invoice_lines"] = []any{} }, required("invoice_lines")},
		{"long reference", func(p map[string]any) { p["reference"] = strings.Repeat("R", 26) }, apiErr(CodeRecordInvalid, "Reference is too long (maximum is 25 characters)", "reference")},
		{"unknown shipping rate", func(p map[string]any) { p["shipping_tax_rate_id"] = "GB_BOGUS" }, apiErr(CodeRecordInvalid, "Couldn't find tax rate.", "shipping_tax_rate_id")},
	}
	for _, tc := range cases {
		p := good()
		tc.mutate(p)
		if errs := e.invoiceErrors(p); len(errs) != 1 || errs[0] != tc.want {
			t.Errorf("%s: %+v", tc.name, errs)
		}
	}
	lineCases := []struct {
		name   string
		mutate func(l map[string]any)
		source string
	}{
		{"bank ledger", func(l map[string]any) { l["ledger_account_id"] = bankLedger }, "line_items.ledger_account_id"},
		{"unknown ledger", func(l map[string]any) { l["ledger_account_id"] = strings.Repeat("0", 32) }, "line_items.ledger_account_id"},
		{"unknown tax rate", func(l map[string]any) { l["tax_rate_id"] = "GB_BOGUS" }, "line_items.tax_rate_id"},
		{"unit price missing", func(l map[string]any) { delete(l, "unit_price") }, "line_items.unit_price"},
	}
	for _, tc := range lineCases {
		l := goodLine(ledger, "Widget", "20.00", "4.00")
		tc.mutate(l)
		errs := e.invoiceErrors(goodInvoice(c.ID, l))
		if len(errs) != 2 || errs[0] != umbrellaLineError || errs[1].Source != tc.source {
			t.Errorf("%s: %+v", tc.name, errs)
		}
	}
	if n := len(e.sim.Invoices(e.sim.LeadBusinessID())); n != 0 {
		t.Fatalf("%d invoices created by invalid requests", n)
	}
}

func TestSalesInvoiceVoid(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("C", "C1")
	inv := e.createInvoice(goodInvoice(c.ID, goodLine(e.salesLedger(), "Widget", "20.00", "4.00")))
	errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "DELETE", "/sales_invoices/"+inv.ID, nil))
	if errs[0].Source != "void_reason" {
		t.Fatalf("void without reason: %+v", errs)
	}
	var voided SalesInvoice
	mustJSON(t, e.expect(http.StatusOK, "DELETE", "/sales_invoices/"+inv.ID+"?void_reason=Order+cancelled", nil), &voided)
	if voided.Status.ID != "VOID" || voided.VoidReason == nil || *voided.VoidReason != "Order cancelled" {
		t.Fatalf("voided %+v", voided)
	}
	// A contact with transactions cannot be deleted.
	e.expect(http.StatusUnprocessableEntity, "DELETE", "/contacts/"+c.ID, nil)

	p := goodInvoice(c.ID, goodLine(e.salesLedger(), "Widget", "20.00", "4.00"))
	p["status_id"] = "DRAFT"
	draft := e.createInvoice(p)
	e.expect(http.StatusNoContent, "DELETE", "/sales_invoices/"+draft.ID, nil)
	e.expect(http.StatusNotFound, "GET", "/sales_invoices/"+draft.ID, nil)
}
