package sagesim

import (
	"fmt"
	"net/http"
	"time"
)

// Faults is the fault injection applied to /v3.1/ requests. Draws come from a
// generator seeded with [Config].Seed, so a sequential test sees the same faults
// on every run.
type Faults struct {
	// ServerErrorRate is the probability (0..1) that a request is answered 500
	// UnexpectedError before anything else happens.
	ServerErrorRate float64 `json:"server_error_rate"`
	// CommitThenDropRate is the probability (0..1) that a POST, PUT or DELETE is
	// performed and then its connection is closed without a response.
	CommitThenDropRate float64 `json:"commit_then_drop_rate"`
	// Latency is added to every /v3.1/ request (real time, not simulated); over
	// HTTP (/__sim/faults) it is given in nanoseconds.
	Latency time.Duration `json:"latency_ns"`
	// RateLimitPerMinute caps requests per business in any 60 simulated
	// seconds; 0 means unlimited. Excess requests get 429.
	RateLimitPerMinute int `json:"rate_limit_per_minute"`
	// RetryAfter adds a Retry-After header (seconds) to 429 answers. Sage has not
	// documented whether it sends one, so it is off by default.
	RetryAfter bool `json:"retry_after"`
}

func (f Faults) validate() error {
	if f.ServerErrorRate < 0 || f.ServerErrorRate > 1 {
		return fmt.Errorf("sagesim: ServerErrorRate %v is not within 0..1", f.ServerErrorRate)
	}
	if f.CommitThenDropRate < 0 || f.CommitThenDropRate > 1 {
		return fmt.Errorf("sagesim: CommitThenDropRate %v is not within 0..1", f.CommitThenDropRate)
	}
	if f.Latency < 0 {
		return fmt.Errorf("sagesim: Latency %v is negative", f.Latency)
	}
	if f.RateLimitPerMinute < 0 {
		return fmt.Errorf("sagesim: RateLimitPerMinute %d is negative", f.RateLimitPerMinute)
	}
	return nil
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

func (f Faults) clamped() Faults {
	f.ServerErrorRate = min(max(f.ServerErrorRate, 0), 1)
	f.CommitThenDropRate = min(max(f.CommitThenDropRate, 0), 1)
	f.Latency = max(f.Latency, 0)
	f.RateLimitPerMinute = max(f.RateLimitPerMinute, 0)
	return f
}

// dropConnection closes the client connection without writing a response, so the
// client sees a reset or EOF although the request was carried out.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 cannot hijack; aborting the handler resets the stream instead.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
