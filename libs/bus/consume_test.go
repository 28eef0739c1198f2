package bus

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
)

// places is a loop's held channel with busy places taken by messages.
func places(capacity, busy int) chan struct{} {
	held := make(chan struct{}, capacity)
	for range busy {
		held <- struct{}{}
	}
	return held
}

// TestReserveTakesEnoughPlaces: reserve returns at once when enough places
// are free or fewer messages than workers are held, and otherwise waits for
// places to free, taking each as it frees.
func TestReserveTakesEnoughPlaces(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name                            string
		capacity, busy, enough, workers int
		want                            int
	}{
		{"idle", 8, 0, 4, 4, 8},
		{"half free", 8, 4, 4, 4, 4},
		{"a worker may be idle", 4, 3, 2, 4, 1},
		{"more than half free", 8, 2, 4, 4, 6},
		{"one place", 1, 0, 1, 1, 1},
		{"fewer places than workers", 2, 1, 1, 4, 1},
		{"many places, few workers", 100, 2, 50, 4, 98},
	} {
		if got := reserve(t.Context(), places(c.capacity, c.busy), c.enough, c.workers); got != c.want {
			t.Errorf("%s: reserved %d places, want %d", c.name, got, c.want)
		}
	}
}

// TestReserveWaitsForHalfThePlaces: with every place busy, reserve takes the
// places as they free and returns only once half of them are free; a loop
// that stops meanwhile gives back what it took.
func TestReserveWaitsForHalfThePlaces(t *testing.T) {
	t.Parallel()
	held := places(8, 8)
	got := make(chan int, 1)
	go func() { got <- reserve(t.Context(), held, 4, 4) }()
	for freed := 1; freed < 4; freed++ {
		<-held // a message settles
		// reserve takes the place back (the channel is full again); one that
		// returned early is caught by the count it returns.
		devtest.Eventually(t, "the freed place taken", func() bool { return len(held) == 8 || len(got) == 1 })
	}
	<-held
	if n := <-got; n != 4 {
		t.Fatalf("reserved %d places, want 4 once half of them are free", n)
	}

	held = places(8, 8)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { got <- reserve(ctx, held, 4, 4) }()
	<-held
	<-held
	devtest.Eventually(t, "the freed places taken", func() bool { return len(held) == 8 })
	cancel()
	if n := <-got; n != 0 || len(held) != 6 {
		t.Fatalf("a stopped reserve returned %d and left %d places taken, want 0 and the 6 busy ones", n, len(held))
	}
}

// beats is a delivery that counts its keep-alives and reports one sent after
// its lease was stopped, or while stop was running.
type beats struct {
	jetstream.Msg
	t       *testing.T
	sent    atomic.Int64
	stopped atomic.Bool
}

func (b *beats) InProgress() error {
	if b.stopped.Load() {
		b.t.Error("a keep-alive was sent after its lease stopped")
	}
	b.sent.Add(1)
	time.Sleep(50 * time.Microsecond) // a send that takes a moment, for stop to meet; no condition to wait on
	if b.stopped.Load() {
		b.t.Error("stop returned while a keep-alive was being sent")
	}
	return nil
}

// TestLeaseKeepsAliveUntilStopped: a lease sends keep-alives until stop, and
// once stop returns none is being sent and none follows, whenever stop comes.
func TestLeaseKeepsAliveUntilStopped(t *testing.T) {
	t.Parallel()
	msg := &beats{t: t}
	l := keepAlive(msg, time.Millisecond)
	devtest.Eventually(t, "three keep-alives", func() bool { return msg.sent.Load() >= 3 })
	l.stop()
	msg.stopped.Store(true)
	l.stop() // stopping twice is harmless

	var wg sync.WaitGroup
	for i := range 100 {
		msg := &beats{t: t}
		l := keepAlive(msg, 100*time.Microsecond)
		wg.Go(func() {
			devtest.Eventually(t, "a keep-alive", func() bool { return msg.sent.Load() >= int64(i%3) })
			l.stop()
			msg.stopped.Store(true)
		})
	}
	wg.Wait()
	// A keep-alive sent after stop would come within an interval or two;
	// its absence is not a condition that can be waited on.
	time.Sleep(10 * time.Millisecond) // an absence to observe, not a condition to wait on
}
