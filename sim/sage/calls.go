package sagesim

import (
	"bufio"
	"cmp"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Call counts the requests that matched one route and ended with one status.
// Route is "METHOD /pattern" as registered, e.g. "GET /v3.1/contacts/{id}";
// Status 0 means the connection was dropped on purpose (commit-then-drop).
type Call struct {
	Route  string `json:"route"`
	Status int    `json:"status"`
	Count  int    `json:"count"`
}

type callKey struct {
	route  string
	status int
}

type callLog struct {
	mu     sync.Mutex
	counts map[callKey]int
}

func newCallLog() *callLog { return &callLog{counts: map[callKey]int{}} }

func (l *callLog) add(route string, status int) {
	l.mu.Lock()
	l.counts[callKey{route, status}]++
	l.mu.Unlock()
}

func (l *callLog) reset() {
	l.mu.Lock()
	l.counts = map[callKey]int{}
	l.mu.Unlock()
}

// Calls returns the request counts by route and status, sorted by route then
// status. /__sim/ requests are not counted.
func (s *Server) Calls() []Call {
	s.calls.mu.Lock()
	out := make([]Call, 0, len(s.calls.counts))
	for k, n := range s.calls.counts {
		out = append(out, Call{Route: k.route, Status: k.status, Count: n})
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

// recordCalls counts each request under the pattern that served it.
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
			s.calls.add(route, sw.status)
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter remembers the status written; 0 means nothing was (a dropped
// connection).
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader records the first status written.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack is kept explicit for handlers that type-assert http.Hijacker.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}
