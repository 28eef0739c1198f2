package sagesim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecodeBodies feeds arbitrary bodies to every POST endpoint: the
// simulator must answer with a Sage status and never panic.
func FuzzDecodeBodies(f *testing.F) {
	f.Add(`{"contact":{"name":"A","contact_type_ids":["CUSTOMER"],"reference":"M1"}}`)
	f.Add(`{"sales_invoice":{"contact_id":"x","date":"2026-01-01","invoice_lines":[{"description":"d","unit_price":"1e3","quantity":null}]}}`)
	f.Add(`{"sales_invoice":{"invoice_lines":{}}}`)
	f.Add(`{"contact_payment":{"transaction_type_id":"CUSTOMER_RECEIPT","total_amount":"1","allocated_artefacts":[{"amount":"1"}]}}`)
	f.Add(`{"contact_allocation":{"transaction_type_id":"CUSTOMER_ALLOCATION","allocated_artefacts":[{}]}}`)
	f.Add(`{"product":{"description":"x","sales_prices":[{}]}}`)
	f.Add(`{"sales_credit_note":{"credit_note_lines":[{"base_currency_net_amount":1}]}}`)
	f.Add(`[`)
	// One simulator serves every execution: without lifting the app's daily
	// request limit, a long run (7 requests an execution) exhausts it and
	// every later answer is a 429.
	e := loggedIn(f, Config{Faults: Faults{AppRequestsPerDay: -1}})
	h := e.sim.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v3.1/contacts", "/v3.1/sales_invoices",
			"/v3.1/sales_credit_notes", "/v3.1/contact_payments", "/v3.1/contact_allocations", "/v3.1/products", "/v3.1/services"} {
			req := httptest.NewRequest("POST", path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+e.access)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			switch rec.Code {
			case http.StatusCreated, http.StatusBadRequest, http.StatusUnprocessableEntity:
			default:
				t.Fatalf("%s %q: status %d %s", path, body, rec.Code, rec.Body)
			}
		}
	})
}
