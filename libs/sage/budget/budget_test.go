package budget

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBusinessPacingAndBurst(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	b, err := New(Config{BusinessPerMinute: 60, BusinessBurst: 2, Now: clk.now, MaxInlineWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	for range 4 {
		w, _ := b.reserve("biz")
		waits = append(waits, w)
	}
	// Burst of two at once, then one a second.
	want := []time.Duration{0, 0, time.Second, 2 * time.Second}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("waits %v, want %v", waits, want)
		}
	}
	// Another business is not affected.
	if w, _ := b.reserve("other"); w != 0 {
		t.Fatalf("other business waits %s", w)
	}
}

func TestThrottleHonoursRetryAfterAndBacksOff(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	b, _ := New(Config{Now: clk.now, MaxInlineWait: time.Second})
	if d := b.Throttled("biz", 7*time.Second); d != 7*time.Second {
		t.Fatalf("Retry-After: %s", d)
	}
	_, err := b.Acquire(context.Background(), "biz")
	var bp *BackPressure
	if !errors.As(err, &bp) || bp.Reason != "business_throttled" || bp.Wait != 7*time.Second {
		t.Fatalf("throttled business: %v", err)
	}
	if _, err := b.Acquire(context.Background(), "other"); err != nil {
		t.Fatalf("other business: %v", err)
	}
	clk.add(8 * time.Second)
	// Without Retry-After: 2 s, 4 s, 8 s … (±20 %) for consecutive 429s.
	for i, want := range []time.Duration{4 * time.Second, 8 * time.Second, 16 * time.Second} {
		d := b.Throttled("biz", 0)
		if d < want*8/10 || d > want*12/10 {
			t.Fatalf("429 #%d: %s, want about %s", i+2, d, want)
		}
		clk.add(d)
	}
	b.Succeeded("biz")
	if d := b.Throttled("biz", 0); d > 3*time.Second {
		t.Fatalf("streak not reset: %s", d)
	}
}

func TestDailyBudgetAndConcurrency(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: time.Date(2026, 1, 1, 23, 0, 0, 0, time.UTC)}
	b, _ := New(Config{AppRequestsPerDay: 4, AppConcurrency: 2, Replicas: 2, Now: clk.now})
	for i := range 2 { // this replica's share is 2 a day, 1 at a time
		rel, err := b.Acquire(context.Background(), "")
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		if _, err := b.Acquire(ctx, ""); err == nil && i == 0 {
			t.Fatal("a second concurrent call was admitted")
		}
		cancel()
		rel()
	}
	_, err := b.Acquire(context.Background(), "biz")
	var bp *BackPressure
	if !errors.As(err, &bp) || bp.Reason != "app_daily_budget" || bp.Wait != time.Hour {
		t.Fatalf("day spent: %v", err)
	}
	clk.add(time.Hour)
	if rel, err := b.Acquire(context.Background(), "biz"); err != nil {
		t.Fatalf("next day: %v", err)
	} else {
		rel()
	}
}

func TestTransportSlowsABusinessOn429(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Business") == "busy" {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	b, _ := New(Config{})
	hc := &http.Client{Transport: &Transport{Base: srv.Client().Transport, Budget: b, APIPrefix: srv.URL}}
	get := func(biz string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v3.1/contacts", nil)
		req.Header.Set("X-Business", biz)
		return hc.Do(req)
	}
	resp, err := get("busy")
	if err != nil || resp.StatusCode != 429 {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()
	if d := b.Delay("busy"); d < 29*time.Second {
		t.Fatalf("Retry-After not honoured: %s", d)
	}
	var bp *BackPressure
	if _, err := get("busy"); !errors.As(err, &bp) {
		t.Fatalf("a throttled business's next call must be held back without being sent: %v", err)
	}
	resp, err = get("calm")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("another business: %v %v", resp, err)
	}
	resp.Body.Close()
	if ParseRetryAfter("junk", time.Now()) != 0 || ParseRetryAfter("99999", time.Now()) != time.Hour {
		t.Fatal("ParseRetryAfter")
	}
}
