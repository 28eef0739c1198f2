package sagesim

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// rateLimiter keeps, per business, the simulated times of the requests admitted
// in the last minute (a sliding window).
type rateLimiter struct {
	mu     sync.Mutex
	window map[string][]time.Time
}

func newRateLimiter() *rateLimiter { return &rateLimiter{window: map[string][]time.Time{}} }

func (l *rateLimiter) reset() {
	l.mu.Lock()
	l.window = map[string][]time.Time{}
	l.mu.Unlock()
}

// admit records a request at now unless limit requests were already admitted in
// the preceding minute; then it returns false and how long until a slot frees.
func (l *rateLimiter) admit(businessID string, now time.Time, limit int) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cutoff := now.Add(-time.Minute)
	times := l.window[businessID]
	i := 0
	for i < len(times) && !times[i].After(cutoff) {
		i++
	}
	times = times[i:]
	if len(times) >= limit {
		l.window[businessID] = times
		return false, times[0].Sub(cutoff)
	}
	l.window[businessID] = append(times, now)
	return true, 0
}

// rateLimit answers 429 when the business is over its per-minute budget.
func (s *Server) rateLimit(businessID string, f Faults) *response {
	if f.RateLimitPerMinute <= 0 {
		return nil
	}
	ok, wait := s.rate.admit(businessID, s.Now(), f.RateLimitPerMinute)
	if ok {
		return nil
	}
	resp := errorResponse(http.StatusTooManyRequests,
		apiErr(CodeTooManyRequests, "Too many requests. Please wait and try again.", ""))
	if f.RetryAfter {
		secs := max(int(math.Ceil(wait.Seconds())), 1)
		resp.header = http.Header{"Retry-After": []string{strconv.Itoa(secs)}}
	}
	return &resp
}
