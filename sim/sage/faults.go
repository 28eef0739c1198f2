package sagesim

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Sage's documented app-wide limits (v3.1 best practices): requests per app
// per day, and concurrent requests per app.
const (
	DefaultAppRequestsPerDay     = 1_296_000
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

// clamped returns f with every value brought into range, and an error naming
// the first value that was out of it.
func (f Faults) clamped() (Faults, error) {
	var errs []error
	for _, r := range []struct {
		name string
		p    *float64
	}{{"ServerErrorRate", &f.ServerErrorRate}, {"CommitThenDropRate", &f.CommitThenDropRate},
		{"ConnectionResetRate", &f.ConnectionResetRate}, {"TokenServerErrorRate", &f.TokenServerErrorRate}} {
		if *r.p < 0 || *r.p > 1 {
			errs = append(errs, fmt.Errorf("sagesim: %s %v is not within 0..1", r.name, *r.p))
		}
		*r.p = min(max(*r.p, 0), 1)
	}
	negative := func(name string, v any, bad bool) {
		if bad {
			errs = append(errs, fmt.Errorf("sagesim: %s %v is negative", name, v))
		}
	}
	negative("Latency", f.Latency, f.Latency < 0)
	negative("LatencyJitter", f.LatencyJitter, f.LatencyJitter < 0)
	negative("RateLimitPerMinute", f.RateLimitPerMinute, f.RateLimitPerMinute < 0)
	f.Latency, f.LatencyJitter, f.RateLimitPerMinute = max(f.Latency, 0), max(f.LatencyJitter, 0), max(f.RateLimitPerMinute, 0)
	if len(errs) > 0 {
		return f, errs[0]
	}
	return f, nil
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
	if _, err := f.clamped(); err != nil {
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
	if p <= 0 || p >= 1 {
		return p >= 1
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

// hijack takes the client connection over, to close it without a response.
// HTTP/2 cannot hijack; aborting the handler resets the stream instead.
func hijack(w http.ResponseWriter) net.Conn {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	return conn
}

// appLimiter is the state of Sage's limits: per business, the simulated times
// of the requests admitted in the last minute (a sliding window); for the app,
// its requests on the current simulated UTC day (a fixed calendar-day window
// [I]) and its requests in flight.
type appLimiter struct {
	inflight atomic.Int64
	mu       sync.Mutex
	window   map[string][]time.Time
	day      time.Time
	count    int
}

// rateLimit answers 429 when the business has used its per-minute budget,
// else it counts the request; Retry-After is when the oldest request leaves
// the window.
func (s *Server) rateLimit(businessID string, f Faults) *response {
	if f.RateLimitPerMinute <= 0 {
		return nil
	}
	now, l := s.Now(), &s.app
	cutoff := now.Add(-time.Minute)
	l.mu.Lock()
	defer l.mu.Unlock()
	times := l.window[businessID]
	for len(times) > 0 && !times[0].After(cutoff) {
		times = times[1:]
	}
	if l.window == nil {
		l.window = map[string][]time.Time{}
	}
	if len(times) >= f.RateLimitPerMinute {
		l.window[businessID] = times
		return tooMany(f, times[0].Sub(cutoff))
	}
	l.window[businessID] = append(times, now)
	return nil
}

// enterApp applies the app-wide limits to a request (the day's budget
// refuses until the next UTC midnight). The returned function must be called
// when the request ends, also when it was refused.
func (s *Server) enterApp(f Faults) (leave func(), refused *response) {
	n := s.app.inflight.Add(1)
	leave = func() { s.app.inflight.Add(-1) }
	if limit := f.appConcurrent(); limit > 0 && n > int64(limit) {
		return leave, tooMany(f, time.Second)
	}
	if limit := f.appPerDay(); limit > 0 {
		now := s.Now()
		day := now.UTC().Truncate(24 * time.Hour)
		s.app.mu.Lock()
		defer s.app.mu.Unlock()
		if !day.Equal(s.app.day) {
			s.app.day, s.app.count = day, 0
		}
		if s.app.count >= limit {
			return leave, tooMany(f, day.Add(24*time.Hour).Sub(now))
		}
		s.app.count++
	}
	return leave, nil
}

// tooMany is the 429 Sage sends for any exceeded limit; wait feeds Retry-After
// when f.RetryAfter is set.
func tooMany(f Faults, wait time.Duration) *response {
	resp := errorResponse(http.StatusTooManyRequests, apiErr(CodeTooManyRequests, "Too many requests. Please wait and try again.", ""))
	if f.RetryAfter {
		resp.header = http.Header{"Retry-After": {strconv.Itoa(max(int(math.Ceil(wait.Seconds())), 1))}}
	}
	return resp
}
