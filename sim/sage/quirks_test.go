package sagesim

import (
	"net/http"
	"testing"
)

// quirkOff returns the default quirks with one switched off.
func quirkOff(off func(*Quirks)) *Quirks {
	q := DefaultQuirks()
	off(&q)
	return &q
}

// §23: a contact reference over 10 characters fails on reference.
func TestQuirkContactReferenceMax10(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	naive := map[string]any{"name": "Guest", "reference": "guest@example.com", "contact_type_ids": []string{"CUSTOMER"}}
	errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/contacts", map[string]any{"contact": naive}))
	want := apiErr(CodeRecordInvalid, "Reference is too long (maximum is 10 characters)", "reference")
	if len(errs) != 1 || errs[0] != want {
		t.Fatalf("naive: %+v", errs)
	}
	naive["reference"] = "G1a2b3c4d5" // Ledger's 10-character guest reference
	e.contactWith(naive)

	off := loggedIn(t, Config{Quirks: quirkOff(func(q *Quirks) { q.ContactReferenceMax10 = false })})
	off.contactWith(map[string]any{"name": "Guest", "reference": "guest@example.com", "contact_type_ids": []string{"CUSTOMER"}})
}

// §27: line base_currency_* fields are rejected; Sage derives them from the rate.
func TestQuirkLineBaseCurrencyRejected(t *testing.T) {
	t.Parallel()
	run := func(q *Quirks) *env {
		e := loggedIn(t, Config{Quirks: q})
		return e
	}
	e := run(nil)
	c := e.contactWith(map[string]any{"name": "Euro Buyer", "reference": "M9E", "contact_type_ids": []string{"CUSTOMER"},
		"currency_id": "EUR", "main_address": map[string]any{"address_line_1": "1 High St", "country_id": "GB"}})
	ledger := e.salesLedger()
	naiveLine := goodLine(ledger, "Widget", "100.00", "20.00")
	naiveLine["base_currency_net_amount"] = "85.47"
	naiveLine["base_currency_tax_amount"] = "17.09"
	p := goodInvoice(c.ID, naiveLine)
	p["currency_id"], p["exchange_rate"] = "EUR", "0.8547008547"
	errs := e.invoiceErrors(p)
	if len(errs) != 3 || errs[0] != umbrellaLineError ||
		errs[1] != apiErr(CodeRecordInvalid, lineBaseCurrencyMessage, "line_items.base_currency_net_amount") ||
		errs[2].Source != "line_items.base_currency_tax_amount" {
		t.Fatalf("naive: %+v", errs)
	}
	// Corrected: header currency and rate only; Sage computes the base amounts.
	fixed := goodInvoice(c.ID, goodLine(ledger, "Widget", "100.00", "20.00"))
	fixed["currency_id"], fixed["exchange_rate"] = "EUR", "0.8547008547"
	inv := e.createInvoice(fixed)
	if inv.Currency.ID != "EUR" || inv.TotalAmount.String() != "120.00" || inv.BaseCurrencyTotalAmount.String() != "102.56" ||
		inv.InvoiceLines[0].BaseCurrencyNetAmount.String() != "85.47" || inv.InverseExchangeRate != "1.17" {
		t.Fatalf("computed base amounts: total %s base %s line base %s inverse %s", inv.TotalAmount,
			inv.BaseCurrencyTotalAmount, inv.InvoiceLines[0].BaseCurrencyNetAmount, inv.InverseExchangeRate)
	}

	off := run(quirkOff(func(q *Quirks) { q.LineBaseCurrencyRejected = false }))
	c2 := off.contactWith(map[string]any{"name": "Euro Buyer", "reference": "M9E", "contact_type_ids": []string{"CUSTOMER"}, "currency_id": "EUR"})
	p["contact_id"] = c2.ID
	naiveLine["ledger_account_id"] = off.salesLedger()
	if inv := off.createInvoice(p); inv.InvoiceLines[0].BaseCurrencyTaxAmount.String() != "17.09" {
		t.Fatalf("quirk off: line base tax %s", inv.InvoiceLines[0].BaseCurrencyTaxAmount)
	}
}

// §28 and §31: default_currency_id is ignored, and a contact is locked to its
// currency, so the naive EUR invoice fails.
func TestQuirkDefaultCurrencyIgnoredAndContactCurrencyLocked(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	ledger := e.salesLedger()
	naive := e.contactWith(map[string]any{"name": "Jean", "reference": "M5", "contact_type_ids": []string{"CUSTOMER"}, "default_currency_id": "EUR"})
	if naive.Currency.ID != "GBP" {
		t.Fatalf("default_currency_id set the currency: %+v", naive.Currency)
	}
	p := goodInvoice(naive.ID, goodLine(ledger, "Widget", "100.00", "20.00"))
	p["currency_id"], p["exchange_rate"] = "EUR", "0.85"
	errs := e.invoiceErrors(p)
	if len(errs) != 1 || errs[0] != apiErr(CodeRecordInvalid, contactCurrencyMessage, "currency_id") {
		t.Fatalf("EUR invoice to a GBP contact: %+v", errs)
	}
	// A credit note is locked the same way.
	cn := map[string]any{"contact_id": naive.ID, "date": "2026-01-15", "currency_id": "EUR",
		"credit_note_lines": []any{goodLine(ledger, "Widget", "10.00", "2.00")}}
	if errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/sales_credit_notes", map[string]any{"sales_credit_note": cn})); errs[0].Source != "currency_id" {
		t.Fatalf("credit note: %+v", errs)
	}
	// Corrected: currency_id on the contact (one contact per currency, M5E).
	euro := e.contactWith(map[string]any{"name": "Jean", "reference": "M5E", "contact_type_ids": []string{"CUSTOMER"}, "currency_id": "EUR"})
	p["contact_id"] = euro.ID
	if inv := e.createInvoice(p); inv.Currency.ID != "EUR" {
		t.Fatalf("invoice currency %s", inv.Currency.ID)
	}
	// Without currency_id a document takes the contact's currency.
	delete(p, "currency_id")
	if inv := e.createInvoice(p); inv.Currency.ID != "EUR" {
		t.Fatalf("implicit currency %s", inv.Currency.ID)
	}
	// A contact with transactions cannot change currency.
	errs = errorsOf(t, e.expect(http.StatusUnprocessableEntity, "PUT", "/contacts/"+euro.ID, map[string]any{"contact": map[string]any{"currency_id": "GBP"}}))
	if errs[0].Source != "currency_id" {
		t.Fatalf("currency change: %+v", errs)
	}

	// §28 off: default_currency_id works; §31 off: any currency goes.
	off := loggedIn(t, Config{Quirks: quirkOff(func(q *Quirks) { q.DefaultCurrencyIgnored = false })})
	if c := off.contactWith(map[string]any{"name": "Jean", "contact_type_ids": []string{"CUSTOMER"}, "default_currency_id": "EUR"}); c.Currency.ID != "EUR" {
		t.Fatalf("§28 off: %+v", c.Currency)
	}
	unlocked := loggedIn(t, Config{Quirks: quirkOff(func(q *Quirks) { q.ContactCurrencyLocked = false })})
	gbp := unlocked.customer("C", "C1")
	p = goodInvoice(gbp.ID, goodLine(unlocked.salesLedger(), "Widget", "100.00", "20.00"))
	p["currency_id"], p["exchange_rate"] = "EUR", "0.85"
	unlocked.createInvoice(p)
}

// §29: a UK business needs zero rates for customers outside the UK.
func TestQuirkZeroRatedOutsideUK(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	fr := e.foreignCustomer("Marie", "M7E")
	ledger := e.salesLedger()
	line := goodLine(ledger, "Widget", "100.00", "20.00")
	line["eu_goods_services_type_id"] = "GOODS"
	p := goodInvoice(fr.ID, line)
	p["shipping_net_amount"], p["shipping_tax_rate_id"] = "5.00", "GB_STANDARD"
	errs := e.invoiceErrors(p)
	want := []APIError{umbrellaLineError, apiErr(CodeRecordInvalid, zeroRatedMessage, "shipping_tax_rate_id"),
		apiErr(CodeRecordInvalid, zeroRatedMessage, "line_items.tax_rate_id")}
	if len(errs) != len(want) {
		t.Fatalf("naive: %+v", errs)
	}
	for i := range want {
		if errs[i] != want[i] {
			t.Fatalf("naive entry %d: %+v, want %+v", i, errs[i], want[i])
		}
	}
	// A line without tax_rate_id takes the ledger's GB_STANDARD and fails too.
	noRate := zeroLine(ledger, "Widget", "100.00", "GOODS")
	delete(noRate, "tax_rate_id")
	noRate["tax_amount"] = "20.00"
	if errs := e.invoiceErrors(goodInvoice(fr.ID, noRate)); errs[len(errs)-1].Source != "line_items.tax_rate_id" {
		t.Fatalf("default rate: %+v", errs)
	}
	// Corrected: every line and shipping zero rated.
	fixed := goodInvoice(fr.ID, zeroLine(ledger, "Widget", "100.00", "GOODS"))
	fixed["shipping_net_amount"] = "5.00"
	if inv := e.createInvoice(fixed); inv.TotalAmount.String() != "105.00" || inv.Currency.ID != "EUR" {
		t.Fatalf("corrected: total %s %s", inv.TotalAmount, inv.Currency.ID)
	}

	off := loggedIn(t, Config{Quirks: quirkOff(func(q *Quirks) { q.ZeroRatedOutsideUK = false })})
	fr2 := off.foreignCustomer("Marie", "M7E")
	line["ledger_account_id"] = off.salesLedger()
	p["contact_id"] = fr2.ID
	off.createInvoice(p)

	// A business registered outside GB is not bound by the UK rule.
	ie := loggedIn(t, Config{Businesses: []BusinessConfig{{Name: "Dublin Ltd", Country: "IE"}}})
	fr3 := ie.foreignCustomer("Marie", "M7E")
	line["ledger_account_id"] = ie.salesLedger()
	p["contact_id"] = fr3.ID
	ie.createInvoice(p)
}

// §30: cross-border lines need the same eu_goods_services_type_id.
func TestQuirkEUGoodsServicesType(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	fr := e.foreignCustomer("Marie", "M7E")
	ledger := e.salesLedger()
	missing := zeroLine(ledger, "Widget", "10.00", "")
	delete(missing, "eu_goods_services_type_id")
	errs := e.invoiceErrors(goodInvoice(fr.ID, missing))
	if len(errs) != 2 || errs[0] != umbrellaLineError || errs[1] != required("line_items.eu_goods_services_type_id") {
		t.Fatalf("missing: %+v", errs)
	}
	mixed := goodInvoice(fr.ID, zeroLine(ledger, "Widget", "10.00", "GOODS"), zeroLine(ledger, "Setup", "5.00", "SERVICES"))
	errs = e.invoiceErrors(mixed)
	if len(errs) != 2 || errs[1] != apiErr(CodeRecordInvalid, "must be the same on every line", "line_items.eu_goods_services_type_id") {
		t.Fatalf("mixed: %+v", errs)
	}
	bad := goodInvoice(fr.ID, zeroLine(ledger, "Widget", "10.00", "STUFF"))
	if errs := e.invoiceErrors(bad); errs[1].Message != "is not included in the list" {
		t.Fatalf("bad value: %+v", errs)
	}
	// Corrected (Ledger coerces a mixed invoice to its default, GOODS).
	inv := e.createInvoice(goodInvoice(fr.ID, zeroLine(ledger, "Widget", "10.00", "GOODS"), zeroLine(ledger, "Setup", "5.00", "GOODS")))
	if inv.InvoiceLines[1].EUGoodsServicesType == nil || inv.InvoiceLines[1].EUGoodsServicesType.ID != "GOODS" {
		t.Fatalf("line type %+v", inv.InvoiceLines[1].EUGoodsServicesType)
	}
	// Domestic invoices do not need it.
	e.createInvoice(goodInvoice(e.customer("C", "C1").ID, goodLine(ledger, "Widget", "10.00", "2.00")))

	off := loggedIn(t, Config{Quirks: quirkOff(func(q *Quirks) { q.EUGoodsServicesTypeRequired = false })})
	fr2 := off.foreignCustomer("Marie", "M7E")
	l2 := off.salesLedger()
	off.createInvoice(goodInvoice(fr2.ID, zeroLine(l2, "Widget", "10.00", "GOODS"), zeroLine(l2, "Setup", "5.00", "SERVICES")))
}

// §32 end to end: the naive shipping payload leaves a phantom outstanding
// balance after the customer pays the Magento grand total; the corrected one is
// fully paid.
func TestQuirkShippingTaxPhantomOutstanding(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("Ada", "M1")
	magentoTotal := "29.00" // 20.00 + 4.00 VAT + 5.00 untaxed shipping
	naive := goodInvoice(c.ID, goodLine(e.salesLedger(), "Widget", "20.00", "4.00"))
	naive["shipping_net_amount"], naive["shipping_tax_amount"], naive["shipping_tax_rate_id"] = "5.00", "0", "GB_STANDARD"
	naive["total_amount"] = magentoTotal // a sent total is ignored, not enforced
	inv := e.createInvoice(naive)
	if inv.TotalAmount.String() != "30.00" {
		t.Fatalf("naive total %s", inv.TotalAmount)
	}
	e.pay("CUSTOMER_RECEIPT", c.ID, magentoTotal, inv.ID, magentoTotal)
	if status, out := e.invoiceStatus(inv.ID); status != "PART_PAID" || out != "1.00" {
		t.Fatalf("naive after full payment: %s outstanding %s, want the phantom PART_PAID 1.00", status, out)
	}
	if e.balance(c.ID) != "1.00" {
		t.Fatalf("contact balance %s", e.balance(c.ID))
	}

	fixed := goodInvoice(c.ID, goodLine(e.salesLedger(), "Widget", "20.00", "4.00"))
	fixed["shipping_net_amount"], fixed["shipping_tax_amount"], fixed["shipping_tax_rate_id"] = "5.00", "0", "GB_ZERO"
	inv2 := e.createInvoice(fixed)
	e.pay("CUSTOMER_RECEIPT", c.ID, magentoTotal, inv2.ID, magentoTotal)
	if status, out := e.invoiceStatus(inv2.ID); status != "PAID" || out != "0.00" {
		t.Fatalf("corrected: %s outstanding %s", status, out)
	}
}

// Sent header totals that disagree with the lines are replaced by Sage's.
func TestSentHeaderTotalsAreRecomputed(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	p := goodInvoice(e.customer("C", "C1").ID, goodLine(e.salesLedger(), "Widget", "20.00", "4.00"))
	p["net_amount"], p["tax_amount"], p["total_amount"] = "1.00", "1.00", "2.00"
	inv := e.createInvoice(p)
	if inv.NetAmount.String() != "20.00" || inv.TaxAmount.String() != "4.00" || inv.TotalAmount.String() != "24.00" {
		t.Fatalf("totals %s %s %s", inv.NetAmount, inv.TaxAmount, inv.TotalAmount)
	}
}
