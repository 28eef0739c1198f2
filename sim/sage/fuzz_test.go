package sagesim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecodeBodies feeds arbitrary bodies to the two write endpoints: the
// simulator must answer with a Sage status and never panic.
func FuzzDecodeBodies(f *testing.F) {
	f.Add(`{"contact":{"name":"A","contact_type_ids":["CUSTOMER"],"reference":"M1"}}`)
	f.Add(`{"sales_invoice":{"contact_id":"x","date":"2026-01-01","invoice_lines":[{"description":"d","unit_price":"1e3","quantity":null}]}}`)
	f.Add(`{"sales_invoice":{"invoice_lines":{}}}`)
	f.Add(`[`)
	e := loggedIn(f, Config{})
	h := e.sim.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v3.1/contacts", "/v3.1/sales_invoices"} {
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
