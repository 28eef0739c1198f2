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
