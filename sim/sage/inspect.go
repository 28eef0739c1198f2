package sagesim

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Call counts the requests that matched one route and ended with one status.
// Route is "METHOD /pattern" as registered, e.g. "GET /v3.1/contacts/{id}";
// Status 0 means the connection was dropped on purpose (commit-then-drop).
type Call struct {
	Route  string `json:"route"`
	Status int    `json:"status"`
	Count  int    `json:"count"`
}

type callLog struct {
	mu     sync.Mutex
	counts map[Call]int // by route and status (Count unset)
}

// Calls returns the request counts by route and status, sorted by route then
// status. /__sim/ requests are not counted.
func (s *Server) Calls() []Call {
	s.calls.mu.Lock()
	out := make([]Call, 0, len(s.calls.counts))
	for k, n := range s.calls.counts {
		out = append(out, Call{Route: k.Route, Status: k.Status, Count: n})
	}
	s.calls.mu.Unlock()
	slices.SortFunc(out, func(a, b Call) int { return cmp.Or(strings.Compare(a.Route, b.Route), a.Status-b.Status) })
	return out
}

// CallCount returns how many requests matched route ("POST /v3.1/contacts")
// with the given status; status -1 counts every status.
func (s *Server) CallCount(route string, status int) int {
	n := 0
	for _, c := range s.Calls() {
		if c.Route == route && (status == -1 || c.Status == status) {
			n += c.Count
		}
	}
	return n
}

// recordCalls counts each request under the pattern that served it
// (UNMATCHED when none did).
func (s *Server) recordCalls(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/__sim/") {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			route := r.Pattern
			if route == "" {
				route = "UNMATCHED"
			} else if !strings.Contains(route, " ") {
				route = r.Method + " " + route
			}
			s.calls.mu.Lock()
			s.calls.counts[Call{Route: route, Status: sw.status}]++
			s.calls.mu.Unlock()
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter remembers the first status written; 0 means nothing was (a
// dropped connection). Unwrap lets http.ResponseController hijack.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = cmp.Or(w.status, code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.status = cmp.Or(w.status, http.StatusOK)
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// inspectRoutes registers the simulator's own JSON surface under /__sim/ (not
// part of Sage, no token), which README.md lists.
func (s *Server) inspectRoutes(mux *http.ServeMux) {
	type answer = func(r *http.Request) (int, any)
	ok := func(v func() any) answer { return func(*http.Request) (int, any) { return http.StatusOK, v() } }
	act := func(f func()) answer { return func(*http.Request) (int, any) { f(); return http.StatusNoContent, nil } }
	fail := func(status int, msg string) (int, any) { return status, map[string]string{"error": msg} }
	routes := map[string]answer{
		"GET /__sim/calls":  ok(func() any { return s.Calls() }),
		"GET /__sim/clock":  ok(func() any { return map[string]time.Time{"now": s.Now()} }),
		"GET /__sim/faults": ok(func() any { return s.Faults() }),
		"GET /__sim/quirks": ok(func() any { return s.Quirks() }),
		"GET /__sim/schema": ok(func() any { return schemaMode{s.StrictSchema()} }),
		"GET /__sim/businesses": ok(func() any {
			type item struct {
				Business
				Lead bool `json:"lead"`
			}
			var out []item
			for _, b := range s.Businesses() {
				out = append(out, item{b, b.Lead})
			}
			return out
		}),
		"POST /__sim/reset":                 act(s.Reset),
		"POST /__sim/tokens/expire-access":  act(s.ExpireAccessTokens),
		"POST /__sim/tokens/revoke-refresh": act(s.RevokeRefreshTokens),
		"POST /__sim/lead-business/change": func(r *http.Request) (int, any) {
			id := r.URL.Query().Get("id")
			if id == "" {
				id = s.ChangeLeadBusiness()
			} else if err := s.SetLeadBusiness(id); err != nil {
				return fail(http.StatusNotFound, err.Error())
			}
			return http.StatusOK, map[string]string{"lead_business_id": id}
		},
		"POST /__sim/clock/advance": func(r *http.Request) (int, any) {
			d, err := time.ParseDuration(r.URL.Query().Get("d"))
			if err != nil || d < 0 {
				return fail(http.StatusBadRequest, "d must be a non-negative Go duration such as 90s")
			}
			s.Advance(d)
			return http.StatusOK, map[string]time.Time{"now": s.Now()}
		},
		"PUT /__sim/faults": func(r *http.Request) (int, any) {
			var f Faults
			err := json.NewDecoder(r.Body).Decode(&f)
			if err == nil {
				err = s.SetFaults(f)
			}
			if err != nil {
				return fail(http.StatusBadRequest, err.Error())
			}
			return http.StatusOK, f
		},
		"PUT /__sim/schema": func(r *http.Request) (int, any) {
			m := schemaMode{s.StrictSchema()}
			if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
				return fail(http.StatusBadRequest, err.Error())
			}
			s.SetStrictSchema(m.Strict)
			return http.StatusOK, m
		},
		"PUT /__sim/quirks": func(r *http.Request) (int, any) {
			q := s.Quirks()
			if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
				return fail(http.StatusBadRequest, err.Error())
			}
			s.SetQuirks(q)
			return http.StatusOK, q
		},
	}
	for name, get := range map[string]func(string) any{
		"contacts":            func(id string) any { return s.Contacts(id) },
		"sales_invoices":      func(id string) any { return s.Invoices(id) },
		"sales_credit_notes":  func(id string) any { return s.CreditNotes(id) },
		"contact_payments":    func(id string) any { return s.Payments(id) },
		"contact_allocations": func(id string) any { return s.Allocations(id) },
		"products":            func(id string) any { return s.Products(id) },
		"services":            func(id string) any { return s.Services(id) },
		"outstanding":         func(id string) any { return map[string]any{"artefacts": s.Outstanding(id), "contacts": s.Balances(id)} },
	} {
		routes["GET /__sim/businesses/{id}/"+name] = func(r *http.Request) (int, any) {
			if !s.readBusiness(r.PathValue("id"), func(*business) {}) {
				return http.StatusNotFound, []APIError{apiErr(CodeRecordNotFound, "Couldn't find record.", "")}
			}
			return http.StatusOK, get(r.PathValue("id"))
		}
	}
	for pattern, h := range routes {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if status, v := h(r); v != nil {
				writeJSON(w, status, v)
			} else {
				w.WriteHeader(status)
			}
		})
	}
}

// readBusiness runs fn on business id, if it exists, under the read lock.
func (s *Server) readBusiness(id string, fn func(*business)) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.businesses[id]
	if ok {
		fn(b)
	}
	return ok
}
