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
	reads := map[string]func() any{
		"calls":  func() any { return s.Calls() },
		"clock":  func() any { return map[string]time.Time{"now": s.Now()} },
		"faults": func() any { return s.Faults() },
		"quirks": func() any { return s.Quirks() },
		"businesses": func() any {
			type item struct {
				Business
				Lead bool `json:"lead"`
			}
			var out []item
			for _, b := range s.Businesses() {
				out = append(out, item{b, b.Lead})
			}
			return out
		},
	}
	for name, read := range reads {
		mux.HandleFunc("GET /__sim/"+name, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, read()) })
	}
	actions := map[string]func(){"reset": s.Reset, "tokens/expire-access": s.ExpireAccessTokens, "tokens/revoke-refresh": s.RevokeRefreshTokens}
	for name, act := range actions {
		mux.HandleFunc("POST /__sim/"+name, func(w http.ResponseWriter, r *http.Request) {
			act()
			w.WriteHeader(http.StatusNoContent)
		})
	}
	documents := map[string]func(string) any{
		"contacts":            func(id string) any { return s.Contacts(id) },
		"sales_invoices":      func(id string) any { return s.Invoices(id) },
		"sales_credit_notes":  func(id string) any { return s.CreditNotes(id) },
		"contact_payments":    func(id string) any { return s.Payments(id) },
		"contact_allocations": func(id string) any { return s.Allocations(id) },
		"products":            func(id string) any { return s.Products(id) },
		"services":            func(id string) any { return s.Services(id) },
		"outstanding":         func(id string) any { return map[string]any{"artefacts": s.Outstanding(id), "contacts": s.Balances(id)} },
	}
	for name, get := range documents {
		mux.HandleFunc("GET /__sim/businesses/{id}/"+name, func(w http.ResponseWriter, r *http.Request) {
			if !s.readBusiness(r.PathValue("id"), func(*business) {}) {
				notFound().write(w)
				return
			}
			writeJSON(w, http.StatusOK, get(r.PathValue("id")))
		})
	}
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
	mux.HandleFunc("POST /__sim/clock/advance", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil || d < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "d must be a non-negative Go duration such as 90s"})
			return
		}
		s.Advance(d)
		writeJSON(w, http.StatusOK, map[string]time.Time{"now": s.Now()})
	})
	mux.HandleFunc("PUT /__sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		err := json.NewDecoder(r.Body).Decode(&f)
		if err == nil {
			err = s.SetFaults(f)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, f)
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
}

// readBusiness runs fn on business id under the read lock; it reports whether
// the business exists.
func (s *Server) readBusiness(id string, fn func(*business)) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.businesses[id]
	if ok {
		fn(b)
	}
	return ok
}
