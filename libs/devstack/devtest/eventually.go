package devtest

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Poll intervals of Eventually: the first checks come quickly, so a condition
// that holds soon is seen soon; a long wait settles at maxPoll so it does not
// take a CPU away from the code it waits for.
const (
	firstPoll = 10 * time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// maxGrace bounds the time Eventually leaves before the test binary's
// deadline; see Eventually.
const maxGrace = 30 * time.Second

// WaitOption changes how Eventually waits.
type WaitOption func(*wait)

type wait struct {
	within  time.Duration
	explain func() string
	until   context.Context
}

// Within makes cond holding within d part of what the test asserts: Eventually
// fails once d has passed, however much time the test has left. Use it where a
// late result is a failure, not merely slow; without it Eventually waits as
// long as the test may run.
func Within(d time.Duration) WaitOption { return func(w *wait) { w.within = d } }

// Explain adds explain's account of the state to the failure message, for a
// condition whose false alone does not say what went wrong.
func Explain(explain func() string) WaitOption { return func(w *wait) { w.explain = explain } }

// Until makes Eventually give up when ctx ends too: pass the context the
// system under test runs in, after whose end cond can no longer change.
func Until(ctx context.Context) WaitOption { return func(w *wait) { w.until = ctx } }

// Eventually polls cond until it returns true. It fails the test, naming what
// it waited for, when the test's context ends, when the test binary's deadline
// (go test -timeout) comes near, or when an option's bound passes. It leaves a
// tenth of the time before the deadline (at most 30 s), so the failure is
// reported with its description and cleanups run before the test binary
// panics. With no deadline (-timeout 0) and no option, it waits as long as the
// test runs.
//
// Call it from the test's goroutine (it calls t.Fatal), or from a cleanup,
// where t.Context() has already ended and only the deadlines count.
func Eventually(t testing.TB, what string, cond func() bool, opts ...WaitOption) {
	t.Helper()
	var w wait
	for _, o := range opts {
		o(&w)
	}
	start := time.Now()
	var stop time.Time // zero: no bound
	if w.within > 0 {
		stop = start.Add(w.within)
	}
	if dl, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := dl.Deadline(); ok {
			d = d.Add(-min(time.Until(d)/10, maxGrace))
			if stop.IsZero() || d.Before(stop) {
				stop = d
			}
		}
	}
	var timeout <-chan time.Time
	if !stop.IsZero() {
		timer := time.NewTimer(time.Until(stop))
		defer timer.Stop()
		timeout = timer.C
	}
	var testDone, untilDone <-chan struct{}
	// Already ended in a cleanup: waiting on it would fail at once.
	if ctx := t.Context(); ctx.Err() == nil {
		testDone = ctx.Done()
	}
	if w.until != nil {
		untilDone = w.until.Done()
	}

	fail := func(why string) {
		t.Helper()
		msg := fmt.Sprintf("gave up waiting for %s after %s: %s", what, time.Since(start).Round(time.Millisecond), why)
		if w.explain != nil {
			msg += "; " + w.explain()
		}
		t.Fatal(msg)
	}
	interval := firstPoll
	for !cond() {
		poll := time.NewTimer(interval)
		select {
		case <-poll.C:
		case <-timeout:
			poll.Stop()
			why := "the test binary's deadline is near"
			if w.within > 0 && stop.Equal(start.Add(w.within)) {
				why = fmt.Sprintf("it must hold within %s", w.within)
			}
			fail(why)
		case <-testDone:
			poll.Stop()
			fail("the test ended")
		case <-untilDone:
			poll.Stop()
			fail(fmt.Sprintf("the context ended (%v)", context.Cause(w.until)))
		}
		interval = min(interval*3/2, maxPoll)
	}
}
