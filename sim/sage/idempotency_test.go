package sagesim

import (
	"bytes"
	"net/http"
	"testing"
	"time"
)

func TestIdempotencyReplayAndMismatch(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("C", "C1")
	const key = "c3a8d2c1b0a94f6e8d7c6b5a4f3e3323"
	p := goodInvoice(c.ID, goodLine(e.salesLedger(), "Widget", "20.00", "4.00"))
	p["idempotency_id"] = key
	body := map[string]any{"sales_invoice": p}
	first := e.expect(http.StatusCreated, "POST", "/sales_invoices", body)
	second := e.expect(http.StatusCreated, "POST", "/sales_invoices", body)
	if !bytes.Equal(first, second) {
		t.Fatalf("replay differs:\n%s\n%s", first, second)
	}
	if n := len(e.sim.Invoices(e.sim.LeadBusinessID())); n != 1 {
		t.Fatalf("%d invoices after a replay", n)
	}

	// The same id on another resource type.
	errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/contacts", map[string]any{"contact": map[string]any{
		"idempotency_id": key, "name": "X", "contact_type_ids": []string{"CUSTOMER"}}}))
	if len(errs) != 1 || errs[0] != apiErr(CodeIdempotencyMismatch, "Entity type mismatch", "") {
		t.Fatalf("mismatch: %+v", errs)
	}

	// A failed request is not remembered: fixing it and retrying with the same id works.
	bad := map[string]any{"idempotency_id": "0000000000000000000000000000000a", "contact_type_ids": []string{"CUSTOMER"}}
	e.expect(http.StatusUnprocessableEntity, "POST", "/contacts", map[string]any{"contact": bad})
	bad["name"] = "Fixed"
	e.expect(http.StatusCreated, "POST", "/contacts", map[string]any{"contact": bad})

	// After 7 days the id is forgotten and the request creates again.
	e.sim.Advance(7*24*time.Hour + time.Second)
	status, tokBody := e.refreshWith(e.refresh)
	if status != http.StatusOK {
		t.Fatalf("refresh: %s", tokBody)
	}
	var tok TokenResponse
	mustJSON(t, tokBody, &tok)
	e.access = tok.AccessToken
	e.expect(http.StatusCreated, "POST", "/sales_invoices", body)
	if n := len(e.sim.Invoices(e.sim.LeadBusinessID())); n != 2 {
		t.Fatalf("%d invoices after expiry", n)
	}
}

func TestIdempotencyUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	body := map[string]any{"contact": map[string]any{
		"idempotency_id": "22222222222222222222222222222222", "name": "Racer", "reference": "R1",
		"contact_type_ids": []string{"CUSTOMER"}}}
	done := make(chan int, 16)
	for range 16 {
		go func() {
			resp, _ := e.do("POST", "/contacts", body)
			done <- resp.StatusCode
		}()
	}
	for range 16 {
		if s := <-done; s != http.StatusCreated {
			t.Errorf("status %d", s)
		}
	}
	if n := len(e.sim.Contacts(e.sim.LeadBusinessID())); n != 1 {
		t.Fatalf("%d contacts from one idempotency_id", n)
	}
}

// The replay window is 7 simulated days, for POST and PUT and every resource
// that takes an idempotency_id.
func TestIdempotencyWindowAndResources(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("C", "C1")
	ledger := e.salesLedger()
	inv := e.createInvoice(goodInvoice(c.ID, goodLine(ledger, "Widget", "20.00", "4.00")))

	// A payment replays byte for byte and pays once.
	pay := e.payment("CUSTOMER_RECEIPT", c.ID, "10.00", inv.ID, "10.00")
	pay["contact_payment"].(map[string]any)["idempotency_id"] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"
	first := e.expect(http.StatusCreated, "POST", "/contact_payments", pay)
	if again := e.expect(http.StatusCreated, "POST", "/contact_payments", pay); !bytes.Equal(first, again) {
		t.Fatal("payment replay differs")
	}
	if e.outstanding(inv.ID) != "14.00" {
		t.Fatalf("replayed payment paid twice: %s", e.outstanding(inv.ID))
	}

	// PUT replays too: the second PUT with the same id does not apply its body.
	put := func(notes string) SalesInvoice {
		var got SalesInvoice
		mustJSON(t, e.expect(http.StatusOK, "PUT", "/sales_invoices/"+inv.ID, map[string]any{"sales_invoice": map[string]any{
			"idempotency_id": "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2", "notes": notes}}), &got)
		return got
	}
	if got := put("first"); got.Notes != "first" {
		t.Fatalf("PUT notes %q", got.Notes)
	}
	if got := put("second"); got.Notes != "first" {
		t.Fatalf("replayed PUT applied its body: %q", got.Notes)
	}

	// Credit notes, allocations, products and services take ids too; the same
	// id on another resource type is a mismatch.
	cnBody := creditNoteBody(c.ID, goodLine(ledger, "Returned", "5.00", "1.00"))
	cnBody["sales_credit_note"].(map[string]any)["idempotency_id"] = "ccccccccccccccccccccccccccccccc3"
	cn := e.createCreditNote(cnBody)
	if again := e.createCreditNote(cnBody); again.ID != cn.ID {
		t.Fatal("credit note replay created another")
	}
	product := map[string]any{"product": map[string]any{"idempotency_id": "ccccccccccccccccccccccccccccccc3",
		"description": "Widget", "sales_ledger_account_id": ledger, "purchase_ledger_account_id": ledger}}
	errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/products", product))
	if errs[0] != apiErr(CodeIdempotencyMismatch, "Entity type mismatch", "") {
		t.Fatalf("mismatch: %+v", errs)
	}

	// One second before 7 days the payment still replays; at 7 days it is new.
	e.sim.Advance(7*24*time.Hour - time.Second)
	e.access = e.refreshed()
	if again := e.expect(http.StatusCreated, "POST", "/contact_payments", pay); !bytes.Equal(first, again) {
		t.Fatal("replay before 7 days differs")
	}
	e.sim.Advance(time.Second)
	e.access = e.refreshed()
	var fresh ContactPayment
	mustJSON(t, e.expect(http.StatusCreated, "POST", "/contact_payments", pay), &fresh)
	if e.outstanding(inv.ID) != "4.00" || len(e.sim.Payments(e.sim.LeadBusinessID())) != 2 {
		t.Fatalf("after 7 days: outstanding %s", e.outstanding(inv.ID))
	}
}
