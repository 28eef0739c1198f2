package budget

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
)

// member is one writer of the fleet under test: its budget and its seat.
type member struct {
	b      *Budget
	cancel context.CancelFunc
	done   chan struct{}
}

func join(t *testing.T, js jetstream.JetStream, cfg Config, id string) *member {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := JoinFleet(t.Context(), js, b, id, 1, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{b: b, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(m.done); f.Run(ctx) }()
	t.Cleanup(m.leave)
	return m
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func (m *member) leave() {
	m.cancel()
	<-m.done
}

// TestFleetSharesTheAppLimits: three writers join and leave one NATS. The
// concurrency shares always add up to at most the app limit once every
// writer has seen the change (one ShareDelay), each share grows back when a
// writer leaves, and the requests granted in a day never exceed the limit
// and fall short of it by at most one block per writer.
func TestFleetSharesTheAppLimits(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(devtest.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{AppConcurrency: 12, AppRequestsPerDay: 1000, BusinessPerMinute: 1e6, BusinessBurst: 1000}
	shares := func(ms ...*member) (sum int, each []int) {
		for _, m := range ms {
			each = append(each, m.b.Concurrency())
			sum += m.b.Concurrency()
		}
		return sum, each
	}
	settled := func(want int, ms ...*member) {
		t.Helper()
		devtest.Eventually(t, fmt.Sprintf("every share at %d", want), func() bool {
			for _, m := range ms {
				if m.b.Concurrency() != want {
					return false
				}
			}
			return true
		})
	}

	a := join(t, js, cfg, "a")
	if got := a.b.Concurrency(); got != 12 {
		t.Fatalf("a lone writer's share is %d, want the whole limit 12", got)
	}
	b := join(t, js, cfg, "b")
	c := join(t, js, cfg, "c")
	// While they settle, the shares never add up to more than the limit.
	var over atomic.Int64
	watch, stopWatch := context.WithCancel(t.Context())
	var watching sync.WaitGroup
	watching.Go(func() {
		for watch.Err() == nil {
			if sum, _ := shares(a, b, c); sum > 12 {
				over.Store(int64(sum))
			}
			time.Sleep(5 * time.Millisecond) // a sampling interval: the shares are watched while they change
		}
	})
	settled(4, a, b, c)
	stopWatch()
	watching.Wait()
	if n := over.Load(); n != 0 {
		t.Errorf("the shares added up to %d while three writers settled, over the limit 12", n)
	}

	// Every writer spends as fast as it can: together they get at most the
	// day's limit, and at least the limit less one block per writer.
	var granted atomic.Int64
	var spend sync.WaitGroup
	for _, m := range []*member{a, b, c} {
		spend.Go(func() {
			for {
				release, err := m.b.Acquire(t.Context(), "")
				if err != nil {
					return
				}
				granted.Add(1)
				release()
			}
		})
	}
	spend.Wait()
	if g := granted.Load(); g > 1000 || g < 1000-3*DayBlock {
		t.Errorf("%d requests granted for a daily limit of 1000 (want at most 1000, at least %d)", g, 1000-3*DayBlock)
	}
	t.Logf("three writers were granted %d of a daily limit of 1000", granted.Load())

	// c leaves: a and b grow to half each; d joins later: thirds again.
	c.leave()
	settled(6, a, b)
	d := join(t, js, cfg, "d")
	if sum, each := shares(a, b, d); sum > 12 {
		t.Errorf("shares %v when d joined: over the limit", each)
	}
	settled(4, a, b, d)
}
