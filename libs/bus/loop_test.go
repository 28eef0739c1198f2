package bus_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/telemetry"
)

// fetches is a consumer that records the size of every fetch.
type fetches struct {
	jetstream.Consumer
	mu    sync.Mutex
	sizes []int
}

func (f *fetches) Fetch(n int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	f.mu.Lock()
	f.sizes = append(f.sizes, n)
	f.mu.Unlock()
	return f.Consumer.Fetch(n, opts...)
}

func (f *fetches) recorded() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sizes)
}

// loopStream creates a stream and the consumer spec reads it with.
func loopStream(t *testing.T, spec bus.ConsumerSpec) (jetstream.JetStream, *fetches) {
	t.Helper()
	js := connect(t)
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: spec.Stream, Subjects: spec.FilterSubjects}); err != nil {
		t.Fatal(err)
	}
	cons, err := bus.EnsureConsumer(t.Context(), js, spec)
	if err != nil {
		t.Fatal(err)
	}
	return js, &fetches{Consumer: cons}
}

// runLoop runs loop until the test ends.
func runLoop(t *testing.T, loop *bus.Loop) {
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- loop.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// TestLoopFetchesHalfItsPlacesUnderLoad: with a backlog, the loop asks for
// messages only once half its places (2×Workers) are free, so one pull
// request brings at least Workers messages, never one at a time.
func TestLoopFetchesHalfItsPlacesUnderLoad(t *testing.T) {
	t.Parallel()
	spec := bus.ConsumerSpec{Stream: "LOAD", Durable: "load", FilterSubjects: []string{"load.>"}, Stage: "test", Workers: 4}
	js, cons := loopStream(t, spec)
	const backlog = 400
	for i := range backlog {
		if _, err := js.PublishAsync(fmt.Sprintf("load.%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	<-js.PublishAsyncComplete()
	var handled atomic.Int64
	runLoop(t, &bus.Loop{JS: js, Consumer: cons, Spec: spec, Log: telemetry.Discard(),
		Handler: func(context.Context, jetstream.Msg) bus.Outcome {
			handled.Add(1)
			return bus.Done()
		}})
	devtest.Eventually(t, "the backlog handled", func() bool { return handled.Load() == backlog })
	for i, n := range cons.recorded() {
		if n < spec.Workers {
			t.Fatalf("fetch %d asked for %d messages, want at least %d (half of 2×Workers): %v", i, n, spec.Workers, cons.recorded())
		}
	}
	if n := len(cons.recorded()); n > backlog/spec.Workers+2 {
		t.Errorf("%d fetches for %d messages, want at most one per %d", n, backlog, spec.Workers)
	}
}

// TestIdleLoopFetchesAtOnce: a loop whose fetches were filled, and whose
// messages are all handled, has a fetch waiting at the server again, so a
// single message published to it is handled at once, not after FetchWait.
func TestIdleLoopFetchesAtOnce(t *testing.T) {
	t.Parallel()
	spec := bus.ConsumerSpec{Stream: "IDLE", Durable: "idle", FilterSubjects: []string{"idle.>"}, Stage: "test", Workers: 4}
	js, cons := loopStream(t, spec)
	// Exactly as many as the first fetch asks for (2×Workers): it ends
	// filled, so what follows comes from the fetch the loop makes next.
	for i := range 2 * spec.Workers {
		if _, err := js.Publish(t.Context(), fmt.Sprintf("idle.%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	var handled atomic.Int64
	runLoop(t, &bus.Loop{JS: js, Consumer: cons, Spec: spec, Log: telemetry.Discard(),
		Handler: func(context.Context, jetstream.Msg) bus.Outcome {
			handled.Add(1)
			return bus.Done()
		}})
	devtest.Eventually(t, "the first fetch handled", func() bool { return handled.Load() == int64(2*spec.Workers) })
	for i := range 3 {
		if _, err := js.Publish(t.Context(), "idle.one", []byte("x")); err != nil {
			t.Fatal(err)
		}
		want := int64(2*spec.Workers + i + 1)
		devtest.Eventually(t, "the single message handled", func() bool { return handled.Load() == want },
			devtest.Within(bus.FetchWait/2))
	}
}
