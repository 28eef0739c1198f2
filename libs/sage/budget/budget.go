// Package budget spends Sage's rate limits on behalf of every Ledger process
// that calls Sage's API: the sage-writer, and the admin service's scheduled
// reference-data refresh and reconciliation.
//
// Sage documents two app-wide limits, 1,296,000 requests a day and 150
// concurrent requests, and throttles each business at an
// undocumented rate. A Budget enforces, for every API call:
//
//   - a pacing bucket per business (GCRA: Rate per minute, Burst), the
//     writer's guess at the undocumented per-business throttle, which a 429
//     slows further: the business waits Retry-After when Sage sends it, else
//     2 s, 4 s, 8 s … capped at 60 s, growing with consecutive 429s;
//   - the app's requests per UTC day and concurrent requests (held until the
//     answer's body is closed): shared by the writers running now through a
//     Fleet (fleet.go), or, without one, this process's 1/Replicas of them.
//
// Waits shorter than MaxInlineWait happen inside the call; a longer one fails
// the call at once with a *BackPressure error (nothing is sent), so a write is
// held and retried later instead of occupying a worker.
//
// Transport wraps an http.RoundTripper with the Budget; requests without an
// X-Business header (token endpoint, /businesses) only take the app limits.
package budget

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ledgersync/ledger/libs/backoff"
)

// Sage's documented app limits and the writer's per-business defaults.
const (
	DefaultAppRequestsPerDay = 1_296_000
	DefaultAppConcurrency    = 150
	// DefaultBusinessPerMinute stays inside the reference's "about 1–2 requests
	// per second per business" and below v3.0's documented 200 per minute.
	DefaultBusinessPerMinute = 100
	DefaultBusinessBurst     = 2
	DefaultMaxInlineWait     = 5 * time.Second
	// 429 without Retry-After: 2 s · 2^(n−1) for the n-th consecutive 429,
	// capped at 60 s, ±20 % jitter (Sage documents no Retry-After, only "wait
	// and repeat").
	DefaultThrottleBase = 2 * time.Second
	DefaultThrottleCap  = 60 * time.Second
)

// Config sets the limits. Zero fields take the defaults above.
type Config struct {
	AppRequestsPerDay int
	AppConcurrency    int
	// Replicas is how many writer processes share the app limits (default 1).
	Replicas int
	// BusinessPerMinute and BusinessBurst pace calls to one business.
	BusinessPerMinute float64
	BusinessBurst     int
	// MaxInlineWait is the longest wait spent inside a call.
	MaxInlineWait time.Duration
	ThrottleBase  time.Duration
	ThrottleCap   time.Duration
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.AppRequestsPerDay == 0 {
		c.AppRequestsPerDay = DefaultAppRequestsPerDay
	}
	if c.AppConcurrency == 0 {
		c.AppConcurrency = DefaultAppConcurrency
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.BusinessPerMinute == 0 {
		c.BusinessPerMinute = DefaultBusinessPerMinute
	}
	if c.BusinessBurst == 0 {
		c.BusinessBurst = DefaultBusinessBurst
	}
	if c.MaxInlineWait == 0 {
		c.MaxInlineWait = DefaultMaxInlineWait
	}
	if c.ThrottleBase == 0 {
		c.ThrottleBase = DefaultThrottleBase
	}
	if c.ThrottleCap == 0 {
		c.ThrottleCap = DefaultThrottleCap
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports impossible limits.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.AppRequestsPerDay < c.Replicas {
		errs = append(errs, fmt.Errorf("app requests per day %d: want at least one per replica (%d)", c.AppRequestsPerDay, c.Replicas))
	}
	if c.AppConcurrency < c.Replicas {
		errs = append(errs, fmt.Errorf("app concurrency %d: want at least one per replica (%d)", c.AppConcurrency, c.Replicas))
	}
	if c.BusinessPerMinute <= 0 {
		errs = append(errs, fmt.Errorf("business rate %v per minute: want > 0", c.BusinessPerMinute))
	}
	if c.BusinessBurst < 1 {
		errs = append(errs, fmt.Errorf("business burst %d: want at least 1", c.BusinessBurst))
	}
	return errors.Join(errs...)
}

// Budget is shared by every call of one writer process. Safe for concurrent use.
type Budget struct {
	cfg      Config
	interval time.Duration // between two calls to one business
	tau      time.Duration // burst tolerance
	perDay   int
	conc     gate
	fleet    *Fleet // shares the app limits when set

	mu         sync.Mutex
	businesses map[string]*business
	day        time.Time
	dayCount   int

	// Observe, when set, is told about every wait and throttle (metrics).
	Observe Observer
}

// Observer receives budget events.
type Observer interface {
	Waited(kind string, d time.Duration) // kind: business | concurrency
	Throttled(business string, delay time.Duration)
}

type business struct {
	tat       time.Time // GCRA theoretical arrival time
	notBefore time.Time // set by a 429
	streak    int       // consecutive 429s
}

// New builds a Budget; cfg must pass Validate.
func New(cfg Config) (*Budget, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	interval := time.Duration(float64(time.Minute) / cfg.BusinessPerMinute)
	return &Budget{
		cfg: cfg, interval: interval, tau: time.Duration(cfg.BusinessBurst-1) * interval,
		perDay: cfg.AppRequestsPerDay / cfg.Replicas, conc: newGate(cfg.AppConcurrency / cfg.Replicas),
		businesses: map[string]*business{},
	}, nil
}

// Config returns the effective configuration.
func (b *Budget) Config() Config { return b.cfg }

// BackPressure is a call refused before it was sent because its business (or
// the app) must wait longer than MaxInlineWait. Nothing reached Sage.
type BackPressure struct {
	Business string
	Wait     time.Duration
	Reason   string // business_throttled | business_rate | app_daily_budget
}

func (e *BackPressure) Error() string {
	return fmt.Sprintf("sage rate budget: %s: %s must wait %s", e.Reason, e.Business, e.Wait.Round(time.Millisecond))
}

// Acquire waits until a call to businessID may be sent and returns the function
// that ends it (call it when the answer's body is closed). businessID "" takes
// only the app limits.
func (b *Budget) Acquire(ctx context.Context, businessID string) (release func(), err error) {
	if businessID != "" {
		wait, reason := b.reserve(businessID)
		if wait > b.cfg.MaxInlineWait {
			return nil, &BackPressure{Business: businessID, Wait: wait, Reason: reason}
		}
		if wait > 0 {
			if b.Observe != nil {
				b.Observe.Waited("business", wait)
			}
			if err := sleep(ctx, wait); err != nil {
				return nil, err
			}
		}
	}
	start := b.cfg.Now()
	if err := b.conc.acquire(ctx); err != nil {
		return nil, err
	}
	if b.Observe != nil {
		if d := b.cfg.Now().Sub(start); d > time.Millisecond {
			b.Observe.Waited("concurrency", d)
		}
	}
	if err := b.countDay(ctx, businessID); err != nil {
		b.conc.release()
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(b.conc.release) }, nil
}

// shareWith makes the fleet the keeper of the app limits: it counts the
// day and sets the concurrency share, share until its first recount.
func (b *Budget) shareWith(f *Fleet, share int) {
	b.mu.Lock()
	b.fleet = f
	b.mu.Unlock()
	b.setConcurrency(share)
}

// setConcurrency sets how many calls this process may have in flight.
func (b *Budget) setConcurrency(n int) { b.conc.setLimit(n) }

// Concurrency is this process's current share of the app's concurrent calls.
func (b *Budget) Concurrency() int { return b.conc.limitNow() }

// reserve books the next slot of businessID, or refuses (returning the wait and
// booking nothing) when the wait exceeds MaxInlineWait.
func (b *Budget) reserve(businessID string) (time.Duration, string) {
	now := b.cfg.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.businesses[businessID]
	if s == nil {
		s = &business{}
		b.businesses[businessID] = s
	}
	t0, reason := now, ""
	if v := s.tat.Add(-b.tau); v.After(t0) {
		t0, reason = v, "business_rate"
	}
	if s.notBefore.After(t0) {
		t0, reason = s.notBefore, "business_throttled"
	}
	wait := t0.Sub(now)
	if wait > b.cfg.MaxInlineWait {
		return wait, reason
	}
	s.tat = maxTime(s.tat, t0).Add(b.interval)
	return wait, reason
}

func (b *Budget) countDay(ctx context.Context, businessID string) error {
	now := b.cfg.Now().UTC()
	day := now.Truncate(24 * time.Hour)
	b.mu.Lock()
	f := b.fleet
	b.mu.Unlock()
	if f != nil {
		ok, err := f.take(ctx, now)
		switch {
		case err != nil:
			return &BackPressure{Business: businessID, Wait: time.Second, Reason: "app_daily_budget_unknown"}
		case !ok:
			return &BackPressure{Business: businessID, Wait: day.Add(24 * time.Hour).Sub(now), Reason: "app_daily_budget"}
		}
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !day.Equal(b.day) {
		b.day, b.dayCount = day, 0
	}
	if b.dayCount >= b.perDay {
		return &BackPressure{Business: businessID, Wait: day.Add(24 * time.Hour).Sub(now), Reason: "app_daily_budget"}
	}
	b.dayCount++
	return nil
}

// throttle is the back-off after consecutive 429s without Retry-After.
func (b *Budget) throttle() backoff.Policy {
	return backoff.Policy{Base: b.cfg.ThrottleBase, Cap: b.cfg.ThrottleCap, Jitter: 0.2}
}

// Throttled records a 429 from businessID: its calls wait retryAfter when Sage
// sent one, else the next step of the throttle schedule. It returns the wait.
func (b *Budget) Throttled(businessID string, retryAfter time.Duration) time.Duration {
	now := b.cfg.Now()
	b.mu.Lock()
	s := b.businesses[businessID]
	if s == nil {
		s = &business{}
		b.businesses[businessID] = s
	}
	s.streak++
	d := retryAfter
	if d <= 0 {
		d = b.throttle().Delay(uint64(s.streak))
	}
	if nb := now.Add(d); nb.After(s.notBefore) {
		s.notBefore = nb
	}
	d = s.notBefore.Sub(now)
	b.mu.Unlock()
	if b.Observe != nil {
		b.Observe.Throttled(businessID, d)
	}
	return d
}

// Delay is how long businessID must still wait after a 429 (0 when it may go).
func (b *Budget) Delay(businessID string) time.Duration {
	now := b.cfg.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.businesses[businessID]; s != nil && s.notBefore.After(now) {
		return s.notBefore.Sub(now)
	}
	return 0
}

// Succeeded ends businessID's 429 streak.
func (b *Budget) Succeeded(businessID string) {
	b.mu.Lock()
	if s := b.businesses[businessID]; s != nil {
		s.streak = 0
	}
	b.mu.Unlock()
}

// Forget drops idle businesses' state (call periodically; a business whose
// bucket is full and that is not throttled loses nothing).
func (b *Budget) Forget() {
	now := b.cfg.Now()
	b.mu.Lock()
	for id, s := range b.businesses {
		if s.tat.Before(now) && s.notBefore.Before(now) && s.streak == 0 {
			delete(b.businesses, id)
		}
	}
	b.mu.Unlock()
}

// Transport spends the budget on every request that goes through it: the
// business is read from the X-Business header; a 429 answer slows that
// business down (Throttled), a 2xx ends its streak.
type Transport struct {
	Base   http.RoundTripper
	Budget *Budget
	// APIPrefix, when set, limits budgeting to URLs that start with it (the
	// token endpoint is not the API).
	APIPrefix string
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.APIPrefix != "" && !strings.HasPrefix(r.URL.String(), t.APIPrefix) {
		return t.Base.RoundTrip(r)
	}
	business := r.Header.Get("X-Business")
	release, err := t.Budget.Acquire(r.Context(), business)
	if err != nil {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, err
	}
	resp, err := t.Base.RoundTrip(r)
	if err != nil {
		release()
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests && business != "":
		t.Budget.Throttled(business, ParseRetryAfter(resp.Header.Get("Retry-After"), t.Budget.cfg.Now()))
	case resp.StatusCode/100 == 2 && business != "":
		t.Budget.Succeeded(business)
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}

// ParseRetryAfter reads Retry-After as seconds or an HTTP date; 0 when absent
// or unusable. It is capped at an hour so a bogus header cannot park a business.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		// Capped before the multiplication, which overflows for n beyond
		// about 292 years and would wrap around to any wait.
		d = time.Duration(min(max(n, 0), int(time.Hour/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), time.Hour)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// gate bounds calls in flight; its limit can change while calls wait.
type gate struct {
	mu    sync.Mutex
	limit int
	used  int
	wake  chan struct{} // closed and replaced whenever a place may have freed
}

func newGate(limit int) gate { return gate{limit: limit, wake: make(chan struct{})} }

func (g *gate) acquire(ctx context.Context) error {
	for {
		g.mu.Lock()
		if g.used < g.limit {
			g.used++
			g.mu.Unlock()
			return nil
		}
		wake := g.wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (g *gate) release() {
	g.mu.Lock()
	g.used--
	g.signal()
	g.mu.Unlock()
}

func (g *gate) setLimit(n int) {
	g.mu.Lock()
	g.limit = n
	g.signal()
	g.mu.Unlock()
}

func (g *gate) limitNow() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit
}

// signal wakes every waiter (g.mu held).
func (g *gate) signal() {
	close(g.wake)
	g.wake = make(chan struct{})
}
