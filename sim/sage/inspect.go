package sagesim

import (
	"encoding/json"
	"net/http"
	"time"
)

// inspectRoutes registers the simulator's own JSON surface under /__sim/. It is
// not part of Sage and needs no token.
//
//	GET  /__sim/calls                          call counts by route and status
//	GET  /__sim/businesses                     every business (with lead flag)
//	GET  /__sim/businesses/{id}/contacts       typed contacts, deleted included
//	GET  /__sim/businesses/{id}/sales_invoices typed invoices, voided included
//	GET  /__sim/businesses/{id}/sales_credit_notes, /contact_payments,
//	     /contact_allocations, /products, /services   typed documents
//	GET  /__sim/businesses/{id}/outstanding    {"artefacts":{id:amount},"contacts":{id:balance}}
//	POST /__sim/lead-business/change[?id=…]    ChangeLeadBusiness() or SetLeadBusiness(id)
//	GET  /__sim/clock                          {"now": …}
//	POST /__sim/clock/advance?d=90s            advance the simulated clock
//	GET  /__sim/faults, PUT /__sim/faults      read or replace Faults
//	GET  /__sim/quirks, PUT /__sim/quirks      read or replace Quirks
//	POST /__sim/reset                          Reset()
//	POST /__sim/tokens/expire-access           ExpireAccessTokens()
//	POST /__sim/tokens/revoke-refresh          RevokeRefreshTokens()
func (s *Server) inspectRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /__sim/calls", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Calls())
	})
	mux.HandleFunc("GET /__sim/businesses", func(w http.ResponseWriter, r *http.Request) {
		type item struct {
			Business
			Lead bool `json:"lead"`
		}
		var out []item
		for _, b := range s.Businesses() {
			out = append(out, item{b, b.Lead})
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /__sim/businesses/{id}/contacts", func(w http.ResponseWriter, r *http.Request) {
		if c := s.Contacts(r.PathValue("id")); c != nil {
			writeJSON(w, http.StatusOK, c)
			return
		}
		notFound().write(w)
	})
	mux.HandleFunc("GET /__sim/businesses/{id}/sales_invoices", func(w http.ResponseWriter, r *http.Request) {
		if inv := s.Invoices(r.PathValue("id")); inv != nil {
			writeJSON(w, http.StatusOK, inv)
			return
		}
		notFound().write(w)
	})
	documents := map[string]func(string) any{
		"sales_credit_notes":  func(id string) any { return nonNil(s.CreditNotes(id)) },
		"contact_payments":    func(id string) any { return nonNil(s.Payments(id)) },
		"contact_allocations": func(id string) any { return nonNil(s.Allocations(id)) },
		"products":            func(id string) any { return nonNil(s.Products(id)) },
		"services":            func(id string) any { return nonNil(s.Services(id)) },
	}
	for name, get := range documents {
		mux.HandleFunc("GET /__sim/businesses/{id}/"+name, func(w http.ResponseWriter, r *http.Request) {
			if !s.hasBusiness(r.PathValue("id")) {
				notFound().write(w)
				return
			}
			writeJSON(w, http.StatusOK, get(r.PathValue("id")))
		})
	}
	mux.HandleFunc("GET /__sim/businesses/{id}/outstanding", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !s.hasBusiness(id) {
			notFound().write(w)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"artefacts": s.Outstanding(id), "contacts": s.Balances(id)})
	})
	mux.HandleFunc("POST /__sim/lead-business/change", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		if id == "" {
			id = s.ChangeLeadBusiness()
		} else if err := s.SetLeadBusiness(id); err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"lead_business_id": id})
	})
	mux.HandleFunc("GET /__sim/clock", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]time.Time{"now": s.Now()})
	})
	mux.HandleFunc("POST /__sim/clock/advance", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil || d < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "d must be a non-negative Go duration such as 90s"})
			return
		}
		s.Advance(d)
		writeJSON(w, http.StatusOK, map[string]time.Time{"now": s.Now()})
	})
	mux.HandleFunc("GET /__sim/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("PUT /__sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if err := s.SetFaults(f); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, f)
	})
	mux.HandleFunc("GET /__sim/quirks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Quirks())
	})
	mux.HandleFunc("PUT /__sim/quirks", func(w http.ResponseWriter, r *http.Request) {
		q := s.Quirks()
		if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		s.SetQuirks(q)
		writeJSON(w, http.StatusOK, q)
	})
	mux.HandleFunc("POST /__sim/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /__sim/tokens/expire-access", func(w http.ResponseWriter, r *http.Request) {
		s.ExpireAccessTokens()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /__sim/tokens/revoke-refresh", func(w http.ResponseWriter, r *http.Request) {
		s.RevokeRefreshTokens()
		w.WriteHeader(http.StatusNoContent)
	})
}

// hasBusiness reports whether a business with id exists.
func (s *Server) hasBusiness(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.businesses[id]
	return ok
}

// nonNil returns docs, or an empty slice (a JSON [] rather than null) for nil.
func nonNil[T any](docs []T) any {
	if docs == nil {
		return []T{}
	}
	return docs
}
