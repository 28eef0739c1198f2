package sagesim

import (
	"sync"
	"time"
)

// clock is the simulated time: a base clock plus an offset that only grows.
type clock struct {
	base   func() time.Time
	mu     sync.Mutex
	offset time.Duration
}

func newClock(base func() time.Time) *clock {
	if base == nil {
		base = time.Now
	}
	return &clock{base: base}
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	off := c.offset
	c.mu.Unlock()
	return c.base().Add(off).UTC()
}

func (c *clock) advance(d time.Duration) {
	if d <= 0 {
		return
	}
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// Now returns the simulated time.
func (s *Server) Now() time.Time { return s.clock.now() }

// Advance moves the simulated clock forward by d (negative d is ignored), so tests
// can expire authorization codes (60 s), access tokens (300 s), refresh tokens
// (31 days), idempotency records (7 days) and rate windows without sleeping.
func (s *Server) Advance(d time.Duration) { s.clock.advance(d) }

// stamp is the simulated time truncated to seconds, the precision Sage shows in
// created_at and updated_at.
func (s *Server) stamp() time.Time { return s.clock.now().Truncate(time.Second) }
