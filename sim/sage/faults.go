package sagesim

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// Sage's documented app-wide limits (v3.1 best practices).
const (
	// DefaultAppRequestsPerDay is Sage's limit of requests per app per day.
	DefaultAppRequestsPerDay = 1_296_000
	// DefaultAppConcurrentRequests is Sage's limit of concurrent requests per app.
	DefaultAppConcurrentRequests = 150
)

// Faults is the fault injection and the limits applied to /v3.1/ requests (and,
// for TokenServerErrorRate, to POST /token). Draws come from a generator seeded
// with [Config].Seed, so a sequential test sees the same faults on every run.
type Faults struct {
	// ServerErrorRate is the probability (0..1) that a request is answered 500
	// UnexpectedError before anything else happens.
	ServerErrorRate float64 `json:"server_error_rate"`
	// CommitThenDropRate is the probability (0..1) that a POST, PUT or DELETE is
	// performed and then its connection is closed without a response.
	CommitThenDropRate float64 `json:"commit_then_drop_rate"`
	// ConnectionResetRate is the probability (0..1) that a request's connection
	// is reset (TCP RST) before anything is done: nothing is committed.
	ConnectionResetRate float64 `json:"connection_reset_rate"`
	// TokenServerErrorRate is the probability (0..1) that POST /token answers
	// 500 without issuing or rotating anything.
	TokenServerErrorRate float64 `json:"token_server_error_rate"`
	// Latency is added to every /v3.1/ request (real time, not simulated); over
	// HTTP (/__sim/faults) it is given in nanoseconds.
	Latency time.Duration `json:"latency_ns"`
	// LatencyJitter adds a uniform random delay in [0, LatencyJitter) on top of
	// Latency, drawn from the seeded generator.
	LatencyJitter time.Duration `json:"latency_jitter_ns"`
	// RateLimitPerMinute caps requests per business in any 60 simulated
	// seconds; 0 means unlimited. Excess requests get 429.
	RateLimitPerMinute int `json:"rate_limit_per_minute"`
	// AppRequestsPerDay caps requests of the whole app per simulated UTC day;
	// 0 means Sage's 1,296,000 and a negative value means unlimited.
	AppRequestsPerDay int `json:"app_requests_per_day"`
	// AppConcurrentRequests caps requests of the whole app in flight at once;
	// 0 means Sage's 150 and a negative value means unlimited. The request over
	// the cap gets 429 at once.
	AppConcurrentRequests int `json:"app_concurrent_requests"`
	// RetryAfter adds a Retry-After header (seconds) to 429 answers. Sage has not
	// documented whether it sends one, so it is off by default.
	RetryAfter bool `json:"retry_after"`
}

// rate is one probability among the faults.
type rate struct {
	name string
	p    *float64
}

func (f *Faults) rates() []rate {
	return []rate{{"ServerErrorRate", &f.ServerErrorRate}, {"CommitThenDropRate", &f.CommitThenDropRate},
		{"ConnectionResetRate", &f.ConnectionResetRate}, {"TokenServerErrorRate", &f.TokenServerErrorRate}}
}

func (f Faults) validate() error {
	for _, r := range f.rates() {
		if *r.p < 0 || *r.p > 1 {
			return fmt.Errorf("sagesim: %s %v is not within 0..1", r.name, *r.p)
		}
	}
	if f.Latency < 0 {
		return fmt.Errorf("sagesim: Latency %v is negative", f.Latency)
	}
	if f.LatencyJitter < 0 {
		return fmt.Errorf("sagesim: LatencyJitter %v is negative", f.LatencyJitter)
	}
	if f.RateLimitPerMinute < 0 {
		return fmt.Errorf("sagesim: RateLimitPerMinute %d is negative", f.RateLimitPerMinute)
	}
	return nil
}

// appPerDay is the effective daily app limit; 0 means unlimited.
func (f Faults) appPerDay() int { return appLimit(f.AppRequestsPerDay, DefaultAppRequestsPerDay) }

// appConcurrent is the effective concurrency cap; 0 means unlimited.
func (f Faults) appConcurrent() int {
	return appLimit(f.AppConcurrentRequests, DefaultAppConcurrentRequests)
}

// appLimit reads an app limit setting: 0 is Sage's limit def, a negative value
// none (0).
func appLimit(v, def int) int {
	if v == 0 {
		return def
	}
	return max(v, 0)
}

// Faults returns the fault injection in force.
func (s *Server) Faults() Faults { _, f := s.controls(); return f }

// SetFaults changes fault injection at runtime. It rejects out-of-range values.
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.ctlMu.Lock()
	s.faults = f
	s.ctlMu.Unlock()
	return nil
}

// draw reports whether an event of probability p happens. A probability of 0
// consumes no randomness, so switching one fault on does not shift the draws of
// the others between runs.
func (s *Server) draw(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	return s.faultRand.Float64() < p
}

// latency returns the delay for one request: Latency plus a seeded uniform draw
// in [0, LatencyJitter). No jitter consumes no randomness.
func (s *Server) latency(f Faults) time.Duration {
	d := f.Latency
	if f.LatencyJitter > 0 {
		s.ctlMu.Lock()
		d += time.Duration(s.faultRand.Int64N(int64(f.LatencyJitter)))
		s.ctlMu.Unlock()
	}
	return d
}

func (f Faults) clamped() Faults {
	for _, r := range f.rates() {
		*r.p = min(max(*r.p, 0), 1)
	}
	f.Latency = max(f.Latency, 0)
	f.LatencyJitter = max(f.LatencyJitter, 0)
	f.RateLimitPerMinute = max(f.RateLimitPerMinute, 0)
	return f
}

// dropConnection closes the client connection without writing a response, so the
// client sees a reset or EOF although the request was carried out.
func dropConnection(w http.ResponseWriter) { _ = hijack(w).Close() }

// resetConnection aborts the connection with a TCP RST (SO_LINGER 0) before
// anything has been done, so the client sees "connection reset by peer".
func resetConnection(w http.ResponseWriter) {
	conn := hijack(w)
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// hijack takes the client connection over. HTTP/2 cannot hijack; aborting the
// handler resets the stream instead.
func hijack(w http.ResponseWriter) net.Conn {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	return conn
}
