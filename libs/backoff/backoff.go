// Package backoff is Ledger's one exponential back-off with jitter: retries of
// a failed message, of a shop or Sage that is down, and of a service waiting
// for its database or NATS all grow the same way, so a burst of failures does
// not come back in lock-step.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy doubles Base per attempt up to Cap and spreads each delay by ±Jitter
// (a fraction: 0.2 is ±20 %).
type Policy struct {
	Base   time.Duration
	Cap    time.Duration
	Jitter float64
	// Rand returns a number in [0,1); nil is math/rand/v2. Tests pin it.
	Rand func() float64
}

// Delay is the wait before attempt n+1, after n failures (n ≥ 1; n < 1 counts
// as 1): Base·2^(n−1), at most Cap, then jittered.
func (p Policy) Delay(n uint64) time.Duration {
	d := p.Cap
	if n < 1 {
		n = 1
	}
	if p.Base > 0 && n <= 62 {
		if raw := p.Base << (n - 1); raw > 0 && (p.Cap <= 0 || raw < p.Cap) {
			d = raw
		}
	}
	if p.Jitter <= 0 {
		return d
	}
	r := rand.Float64
	if p.Rand != nil {
		r = p.Rand
	}
	return time.Duration(float64(d) * (1 - p.Jitter + 2*p.Jitter*r()))
}
