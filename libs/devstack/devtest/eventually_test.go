package devtest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
)

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	t.Parallel()
	calls := 0
	devtest.Eventually(t, "the third call", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
}

// fakeT records Eventually's failure instead of failing the test, and has
// the deadline the test gives it.
type fakeT struct {
	testing.TB
	deadline time.Time
	failed   chan string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatal(args ...any) {
	f.failed <- fmt.Sprint(args...)
	runtime.Goexit()
}

func (f *fakeT) Deadline() (time.Time, bool) { return f.deadline, !f.deadline.IsZero() }

// failure runs Eventually with a condition that never holds and returns its
// failure message and how long it waited.
func failure(t *testing.T, deadline time.Time, opts ...devtest.WaitOption) (string, time.Duration) {
	t.Helper()
	f := &fakeT{TB: t, deadline: deadline, failed: make(chan string, 1)}
	start := time.Now()
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		devtest.Eventually(f, "never", func() bool { return false }, opts...)
	}()
	<-returned
	select {
	case msg := <-f.failed:
		return msg, time.Since(start)
	default:
		t.Fatal("Eventually returned although the condition never held")
		return "", 0
	}
}

func TestEventuallyWithinFailsWithTheExplanation(t *testing.T) {
	t.Parallel()
	msg, waited := failure(t, time.Time{}, devtest.Within(100*time.Millisecond), devtest.Explain(func() string { return "3 pending" }))
	if waited < 100*time.Millisecond {
		t.Errorf("failed after %s, before the bound", waited)
	}
	for _, want := range []string{"never", "must hold within 100ms", "3 pending"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q does not say %q", msg, want)
		}
	}
}

func TestEventuallyLeavesTimeBeforeTheTestDeadline(t *testing.T) {
	t.Parallel()
	// A tenth of 3 s is left: ample for a loaded machine to fail in time.
	deadline := time.Now().Add(3 * time.Second)
	msg, _ := failure(t, deadline, devtest.Within(time.Minute))
	if left := time.Until(deadline); left <= 0 {
		t.Errorf("failed %s after the deadline", -left)
	}
	if !strings.Contains(msg, "deadline is near") {
		t.Errorf("failure %q does not name the deadline", msg)
	}
}

func TestEventuallyUntilTheContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancelCause(t.Context())
	time.AfterFunc(50*time.Millisecond, func() { cancel(errors.New("stack stopped")) })
	msg, _ := failure(t, time.Time{}, devtest.Until(ctx))
	if !strings.Contains(msg, "stack stopped") {
		t.Errorf("failure %q does not say why the context ended", msg)
	}
}
