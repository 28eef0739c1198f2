package sagesim

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
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
	return tooMany(f, wait)
}

// appLimiter enforces Sage's app-wide limits: requests per simulated UTC day
// (a fixed calendar-day window [I]) and requests in flight.
type appLimiter struct {
	inflight atomic.Int64

	mu    sync.Mutex
	day   time.Time
	count int
}

func (l *appLimiter) reset() {
	l.mu.Lock()
	l.day, l.count = time.Time{}, 0
	l.mu.Unlock()
}

// admitDay counts a request at now against limit per day; when the day's budget
// is spent it returns false and the time until the next day starts.
func (l *appLimiter) admitDay(now time.Time, limit int) (bool, time.Duration) {
	day := now.UTC().Truncate(24 * time.Hour)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !day.Equal(l.day) {
		l.day, l.count = day, 0
	}
	if l.count >= limit {
		return false, day.Add(24 * time.Hour).Sub(now)
	}
	l.count++
	return true, 0
}

// tooMany is the 429 Sage sends for any exceeded limit; wait feeds Retry-After
// when f.RetryAfter is set.
func tooMany(f Faults, wait time.Duration) *response {
	resp := errorResponse(http.StatusTooManyRequests,
		apiErr(CodeTooManyRequests, "Too many requests. Please wait and try again.", ""))
	if f.RetryAfter {
		secs := max(int(math.Ceil(wait.Seconds())), 1)
		resp.header = http.Header{"Retry-After": []string{strconv.Itoa(secs)}}
	}
	return &resp
}

// enterApp applies the app-wide limits to a request. The returned function
// must be called when the request ends (also when it was refused).
func (s *Server) enterApp(f Faults) (leave func(), refused *response) {
	n := s.app.inflight.Add(1)
	leave = func() { s.app.inflight.Add(-1) }
	if limit := f.appConcurrent(); limit > 0 && n > int64(limit) {
		return leave, tooMany(f, time.Second)
	}
	if limit := f.appPerDay(); limit > 0 {
		if ok, wait := s.app.admitDay(s.Now(), limit); !ok {
			return leave, tooMany(f, wait)
		}
	}
	return leave, nil
}
