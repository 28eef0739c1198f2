package sagesim

import (
	"net/http"
	"testing"
)

func TestPaymentsMoveOutstandingBalances(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("Ada", "M1")
	ledger := e.salesLedger()
	inv := e.createInvoice(goodInvoice(c.ID, goodLine(ledger, "Widget", "100.00", "20.00")))
	if e.balance(c.ID) != "120.00" {
		t.Fatalf("balance %s", e.balance(c.ID))
	}

	// Part paid.
	p1 := e.pay("CUSTOMER_RECEIPT", c.ID, "50.00", inv.ID, "50.00")
	if len(p1.AllocatedArtefacts) != 1 || p1.AllocatedArtefacts[0].Artefact.ID != inv.ID || p1.PaymentOnAccount != nil ||
		p1.TransactionType.ID != "CUSTOMER_RECEIPT" || p1.Currency.ID != "GBP" {
		t.Fatalf("payment %+v", p1)
	}
	if status, out := e.invoiceStatus(inv.ID); status != "PART_PAID" || out != "70.00" {
		t.Fatalf("part paid: %s %s", status, out)
	}
	// Paid, with the excess on account.
	p2 := e.pay("CUSTOMER_RECEIPT", c.ID, "100.00", inv.ID, "70.00")
	if p2.PaymentOnAccount == nil || p2.PaymentOnAccount.TotalAmount.String() != "30.00" ||
		p2.PaymentOnAccount.OutstandingAmount.String() != "30.00" || len(p2.PaymentOnAccount.ID) != 32 {
		t.Fatalf("payment on account %+v", p2.PaymentOnAccount)
	}
	var got SalesInvoice
	mustJSON(t, e.expect(http.StatusOK, "GET", "/sales_invoices/"+inv.ID, nil), &got)
	if got.Status.ID != "PAID" || got.OutstandingAmount.String() != "0.00" || got.TotalPaid.String() != "120.00" {
		t.Fatalf("paid: %+v", got)
	}
	if e.balance(c.ID) != "-30.00" || e.outstanding(p2.PaymentOnAccount.ID) != "30.00" {
		t.Fatalf("balance %s on account %s", e.balance(c.ID), e.outstanding(p2.PaymentOnAccount.ID))
	}
	if page := e.list("/sales_invoices?status_id=PAID&contact_id=" + c.ID + "&from_date=2026-01-15&to_date=2026-01-15"); page.Total != 1 {
		t.Fatalf("invoice filters: %+v", page)
	}
	if page := e.list("/sales_invoices?status_id=UNPAID"); page.Total != 0 {
		t.Fatalf("status filter: %+v", page)
	}
	// Paying a paid invoice.
	errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/contact_payments", e.payment("CUSTOMER_RECEIPT", c.ID, "1.00", inv.ID, "1.00")))
	if len(errs) != 1 || errs[0] != apiErr(CodeRecordInvalid, "You can only pay unpaid or part-paid invoices.", "") {
		t.Fatalf("paid invoice: %+v", errs)
	}

	// The payment on account settles a new invoice through an allocation.
	inv2 := e.createInvoice(goodInvoice(c.ID, goodLine(ledger, "Gadget", "20.00", "4.00")))
	var alloc ContactAllocation
	mustJSON(t, e.expect(http.StatusCreated, "POST", "/contact_allocations", map[string]any{"contact_allocation": map[string]any{
		"transaction_type_id": "CUSTOMER_ALLOCATION", "contact_id": c.ID, "allocated_artefacts": []any{
			map[string]any{"artefact_id": inv2.ID, "amount": "24.00"},
			map[string]any{"artefact_id": p2.PaymentOnAccount.ID, "amount": "-24.00"},
		}}}), &alloc)
	if status, out := e.invoiceStatus(inv2.ID); status != "PAID" || out != "0.00" || e.outstanding(p2.PaymentOnAccount.ID) != "6.00" {
		t.Fatalf("allocation: %s %s, on account %s", status, out, e.outstanding(p2.PaymentOnAccount.ID))
	}
	if e.balance(c.ID) != "-6.00" {
		t.Fatalf("balance after allocation %s", e.balance(c.ID))
	}
	// The receipt that created the payment on account cannot be deleted now.
	e.expect(http.StatusUnprocessableEntity, "DELETE", "/contact_payments/"+p2.ID, nil)
	// Deleting the allocation and then the receipt restores everything.
	e.expect(http.StatusNoContent, "DELETE", "/contact_allocations/"+alloc.ID, nil)
	e.expect(http.StatusNoContent, "DELETE", "/contact_payments/"+p2.ID, nil)
	e.expect(http.StatusNotFound, "GET", "/contact_payments/"+p2.ID, nil)
	if status, out := e.invoiceStatus(inv.ID); status != "PART_PAID" || out != "70.00" {
		t.Fatalf("after delete: %s %s", status, out)
	}
	if e.balance(c.ID) != "94.00" { // 70.00 + 24.00
		t.Fatalf("balance after delete %s", e.balance(c.ID))
	}
	if page := e.list("/contact_payments?contact_id=" + c.ID); page.Total != 1 {
		t.Fatalf("payments listed %+v", page)
	}
	if n := len(e.sim.Payments(e.sim.LeadBusinessID())); n != 2 {
		t.Fatalf("inspection keeps deleted payments: %d", n)
	}
}

func TestRefundAndCreditNoteAllocation(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("Ada", "M1")
	ledger := e.salesLedger()
	inv := e.createInvoice(goodInvoice(c.ID, goodLine(ledger, "Widget", "100.00", "20.00")))
	e.pay("CUSTOMER_RECEIPT", c.ID, "120.00", inv.ID, "120.00")

	// Refund a credit note (Magento refund after payment).
	cn := e.createCreditNote(creditNoteBody(c.ID, goodLine(ledger, "Returned widget", "25.00", "5.00")))
	refund := e.pay("CUSTOMER_REFUND", c.ID, "30.00", cn.ID, "30.00")
	if refund.TransactionType.ID != "CUSTOMER_REFUND" || e.outstanding(cn.ID) != "0.00" || e.balance(c.ID) != "0.00" {
		t.Fatalf("refund: cn outstanding %s balance %s", e.outstanding(cn.ID), e.balance(c.ID))
	}
	var got SalesCreditNote
	mustJSON(t, e.expect(http.StatusOK, "GET", "/sales_credit_notes/"+cn.ID, nil), &got)
	if got.Status.ID != "PAID" {
		t.Fatalf("refunded credit note %s", got.Status.ID)
	}
	// A receipt cannot name a credit note; a refund must be allocated in full.
	cn2 := e.createCreditNote(creditNoteBody(c.ID, goodLine(ledger, "Returned widget", "10.00", "2.00")))
	e.expect(http.StatusUnprocessableEntity, "POST", "/contact_payments", e.payment("CUSTOMER_RECEIPT", c.ID, "12.00", cn2.ID, "12.00"))
	e.expect(http.StatusUnprocessableEntity, "POST", "/contact_payments", e.payment("CUSTOMER_REFUND", c.ID, "20.00", cn2.ID, "12.00"))

	// A credit note against an unpaid invoice (Magento refund before payment).
	inv2 := e.createInvoice(goodInvoice(c.ID, goodLine(ledger, "Gadget", "50.00", "10.00")))
	body := func(invAmount, cnAmount string) map[string]any {
		return map[string]any{"contact_allocation": map[string]any{
			"transaction_type_id": "CUSTOMER_ALLOCATION", "contact_id": c.ID, "allocated_artefacts": []any{
				map[string]any{"artefact_id": inv2.ID, "amount": invAmount},
				map[string]any{"artefact_id": cn2.ID, "amount": cnAmount},
			}}}
	}
	errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/contact_allocations", body("12.00", "-10.00")))
	if errs[0].Message != "The allocated amounts must net to zero." {
		t.Fatalf("unbalanced: %+v", errs)
	}
	e.expect(http.StatusUnprocessableEntity, "POST", "/contact_allocations", body("12.00", "12.00")) // credit must be negative
	e.expect(http.StatusCreated, "POST", "/contact_allocations", body("12.00", "-12.00"))
	if status, out := e.invoiceStatus(inv2.ID); status != "PART_PAID" || out != "48.00" || e.outstanding(cn2.ID) != "0.00" {
		t.Fatalf("allocated: %s %s cn %s", status, out, e.outstanding(cn2.ID))
	}
	if e.balance(c.ID) != "48.00" {
		t.Fatalf("balance %s", e.balance(c.ID))
	}
	if page := e.list("/contact_allocations?contact_id=" + c.ID); page.Total != 1 {
		t.Fatalf("allocations listed %+v", page)
	}
}

func TestPaymentValidation(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("Ada", "M1")
	other := e.customer("Bob", "M2")
	ledger := e.salesLedger()
	inv := e.createInvoice(goodInvoice(c.ID, goodLine(ledger, "Widget", "100.00", "20.00")))

	check := func(name string, body map[string]any, want APIError) {
		t.Helper()
		errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/contact_payments", body))
		if len(errs) == 0 || errs[0] != want {
			t.Errorf("%s: %+v, want %+v", name, errs, want)
		}
	}
	check("total below allocations", e.payment("CUSTOMER_RECEIPT", c.ID, "10.00", inv.ID, "20.00"),
		apiErr(CodeRecordInvalid, "The total amount cannot be less than the sum of the allocated amounts.", "total_amount"))
	check("over outstanding", e.payment("CUSTOMER_RECEIPT", c.ID, "200.00", inv.ID, "200.00"),
		apiErr(CodeRecordInvalid, "The amount allocated exceeds the outstanding amount.", "allocated_artefacts.amount"))
	check("another contact's invoice", e.payment("CUSTOMER_RECEIPT", other.ID, "10.00", inv.ID, "10.00"),
		apiErr(CodeRecordInvalid, "The artefact does not belong to this contact.", "allocated_artefacts.artefact_id"))
	check("unknown artefact", e.payment("CUSTOMER_RECEIPT", c.ID, "10.00", "00000000000000000000000000000000", "10.00"),
		apiErr(CodeRecordNotFound, "Couldn't find record.", "allocated_artefacts.artefact_id"))
	missing := e.payment("CUSTOMER_RECEIPT", c.ID, "10.00")
	delete(missing["contact_payment"].(map[string]any), "bank_account_id")
	delete(missing["contact_payment"].(map[string]any), "transaction_type_id")
	errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/contact_payments", missing))
	if len(errs) != 2 || errs[0] != required("transaction_type_id") || errs[1] != required("bank_account_id") {
		t.Errorf("required: %+v", errs)
	}

	// A payment for a EUR invoice must be in EUR: the naive payment without
	// currency_id is in the bank's GBP.
	eur := e.contactWith(map[string]any{"name": "Euro", "reference": "M3E", "contact_type_ids": []string{"CUSTOMER"}, "currency_id": "EUR"})
	p := goodInvoice(eur.ID, goodLine(ledger, "Widget", "100.00", "20.00"))
	p["exchange_rate"] = "0.85"
	einv := e.createInvoice(p)
	if einv.Currency.ID != "EUR" || einv.BaseCurrencyTotalAmount.String() != "102.00" {
		t.Fatalf("EUR invoice %s base %s", einv.Currency.ID, einv.BaseCurrencyTotalAmount)
	}
	check("currency mismatch", e.payment("CUSTOMER_RECEIPT", eur.ID, "120.00", einv.ID, "120.00"),
		apiErr(CodeRecordInvalid, "The currency must match the currency of the allocated artefacts.", "currency_id"))
	fixed := e.payment("CUSTOMER_RECEIPT", eur.ID, "120.00", einv.ID, "120.00")
	fixed["contact_payment"].(map[string]any)["currency_id"] = "EUR"
	fixed["contact_payment"].(map[string]any)["exchange_rate"] = "0.85"
	var pay ContactPayment
	mustJSON(t, e.expect(http.StatusCreated, "POST", "/contact_payments", fixed), &pay)
	if pay.BaseCurrencyTotalAmount.String() != "102.00" || e.outstanding(einv.ID) != "0.00" {
		t.Fatalf("EUR payment base %s outstanding %s", pay.BaseCurrencyTotalAmount, e.outstanding(einv.ID))
	}
}
