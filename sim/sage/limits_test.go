package sagesim

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestAppRequestsPerDay(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{
		Businesses: []BusinessConfig{{Name: "A", Lead: true}, {Name: "B"}},
		Faults:     Faults{AppRequestsPerDay: 3, RetryAfter: true},
	})
	var other string
	for _, b := range e.sim.Businesses() {
		if !b.Lead {
			other = b.ID
		}
	}
	// The limit is per app: requests to two businesses share it.
	e.expect(http.StatusOK, "GET", "/contacts", nil)
	e.expect(http.StatusOK, "GET", "/contacts", nil, "X-Business", other)
	e.expect(http.StatusOK, "GET", "/tax_rates", nil)
	resp, body := e.do("GET", "/contacts", nil, "X-Business", other)
	if resp.StatusCode != http.StatusTooManyRequests || errorsOf(t, body)[0].DataCode != CodeTooManyRequests {
		t.Fatalf("4th request of the day: %d %s", resp.StatusCode, body)
	}
	// testStart is 10:00 UTC: the next day starts in 14 h.
	if got := resp.Header.Get("Retry-After"); got != "50400" {
		t.Fatalf("Retry-After %q", got)
	}
	e.sim.Advance(14 * time.Hour)
	e.access = e.refreshed()
	e.expect(http.StatusOK, "GET", "/contacts", nil)

	// The default is Sage's 1,296,000; a negative value means unlimited.
	if f := (Faults{}); f.appPerDay() != 1_296_000 || f.appConcurrent() != 150 {
		t.Fatalf("defaults %d %d", f.appPerDay(), f.appConcurrent())
	}
	if f := (Faults{AppRequestsPerDay: -1, AppConcurrentRequests: -1}); f.appPerDay() != 0 || f.appConcurrent() != 0 {
		t.Fatal("negative limits are not unlimited")
	}
}

func TestAppConcurrentRequests(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	// Hold two requests in flight with latency; the third is over the cap.
	if err := e.sim.SetFaults(Faults{AppConcurrentRequests: 2, Latency: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	statuses := make(chan int, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := e.do("GET", "/tax_rates", nil)
			statuses <- resp.StatusCode
		}()
	}
	// Poll until both are in flight.
	deadline := time.Now().Add(2 * time.Second)
	for e.sim.app.inflight.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("requests never got in flight")
		}
		time.Sleep(time.Millisecond)
	}
	resp, body := e.do("GET", "/tax_rates", nil)
	if resp.StatusCode != http.StatusTooManyRequests || errorsOf(t, body)[0].DataCode != CodeTooManyRequests {
		t.Fatalf("3rd concurrent request: %d %s", resp.StatusCode, body)
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Fatalf("in-flight request: %d", s)
		}
	}
	if err := e.sim.SetFaults(Faults{AppConcurrentRequests: 2}); err != nil {
		t.Fatal(err)
	}
	e.expect(http.StatusOK, "GET", "/tax_rates", nil) // slots are released
	e.waitCalls("GET /v3.1/tax_rates", http.StatusTooManyRequests, 1)
}

// refreshed refreshes the env's tokens and returns the new access token.
func (e *env) refreshed() string {
	e.t.Helper()
	status, body := e.refreshWith(e.refresh)
	if status != http.StatusOK {
		e.t.Fatalf("refresh: %d %s", status, body)
	}
	var tok TokenResponse
	mustJSON(e.t, body, &tok)
	e.refresh = tok.RefreshToken
	return tok.AccessToken
}
