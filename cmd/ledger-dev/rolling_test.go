package main

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/process"
	"github.com/ledgersync/ledger/libs/sage/budget"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/services/mapper"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
	"github.com/ledgersync/ledger/services/statecallback"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// progress samples a counter and remembers the longest time it stood still.
type progress struct {
	mu      sync.Mutex
	last    int
	since   time.Time
	longest time.Duration
	from    time.Time // when the longest stand-still began
}

func (p *progress) observe(n int, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.since.IsZero() || n != p.last {
		p.last, p.since = n, now
		return
	}
	if d := now.Sub(p.since); d > p.longest {
		p.longest, p.from = d, p.since
	}
}

// longestFrom is when the longest stand-still began.
func (p *progress) longestFrom() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.from
}

func (p *progress) stall() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.longest
}

// TestRollingRestartHandsWorkBack is issue 16's deploy test: with a second
// replica of the mapper, the writer and statecallback running, each of the
// first replicas is stopped in turn (the SIGTERM path of its main) while a
// burst of invoices flows. Each must stop within its grace time, handing back
// what it held, so neither Sage nor the shop's sync-state table stands still
// for more than 5 s; every invoice arrives once.
func TestRollingRestartHandsWorkBack(t *testing.T) {
	if testing.Short() {
		t.Skip("a burst through two replicas of every consumer")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	st, log := startStack(t, ctx, stack.Options{ShopDrainInterval: 200 * time.Millisecond})
	defer st.Close()
	if err := st.Onboard(ctx, "rolling", "Rolling shop"); err != nil {
		t.Fatal(err)
	}

	// The second replicas.
	runCtx, stopReplicas := context.WithCancel(ctx)
	var replicas []*process.Runner
	for _, p := range []process.Program{
		mapper.Program(mapper.Config{Addr: "127.0.0.1:0"}),
		sagewriter.Program(sagewriter.Config{Addr: "127.0.0.1:0", Endpoints: st.SageEndpoints(), ClientID: stack.SageClientID,
			ClientSecret: secrets.String(stack.SageClientSecret), TenantScan: stack.DevTenantScan,
			Budget: budget.Config{BusinessPerMinute: stack.DevBusinessPerMinute, BusinessBurst: stack.DevBusinessBurst}}),
		statecallback.Program(statecallback.Config{Addr: "127.0.0.1:0"}),
	} {
		r, err := process.Start(runCtx, log.With("service", "second-"+p.Name), st.Settings(), p)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Built(ctx); err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, r)
	}
	defer func() {
		stopReplicas()
		for _, r := range replicas {
			if err := r.Wait(); err != nil {
				t.Errorf("second replica: %v", err)
			}
		}
	}()

	seed := st.Shop.Seed(rand.New(rand.NewPCG(16, 16)), magentosim.Options{Customers: 40, Invoices: 900, GuestShare: 0.2})
	expected := stack.ExpectSeed(seed)
	biz := st.Sage.LeadBusinessID()
	// Progress is measured once the burst flows (the first 100 invoices in
	// Sage): the start-up before it is not a stall of a restart.
	devtest.Eventually(t, "the first 100 invoices in Sage", func() bool { return len(st.Sage.Invoices(biz)) >= 100 }, devtest.Until(ctx))
	var inSage, inShop progress
	sampled := make(chan struct{})
	sampleCtx, stopSampling := context.WithCancel(ctx)
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sampleCtx.Done():
				return
			case now := <-tick.C:
				if n := len(st.Sage.Invoices(biz)); n < len(seed.InvoiceIDs) {
					inSage.observe(n, now)
				}
				if sum := st.Check(expected); sum.Synced < len(expected) {
					inShop.observe(sum.Synced, now)
				}
			}
		}
	}()

	start := time.Now()
	for _, name := range []string{"mapper", "sage-writer", "statecallback"} {
		began := time.Now()
		if err := st.StopService(name); err != nil {
			t.Errorf("stopping %s: %v", name, err)
		}
		t.Logf("%s stopped at +%s in %s with %d of %d invoices in Sage", name, began.Sub(start).Round(time.Millisecond),
			time.Since(began).Round(time.Millisecond), len(st.Sage.Invoices(biz)), len(seed.InvoiceIDs))
		before := st.Check(expected).Synced
		devtest.Eventually(t, "progress after stopping "+name, func() bool { return st.Check(expected).Synced > before+20 }, devtest.Until(ctx))
	}
	wctx, wcancel := context.WithTimeout(ctx, 4*time.Minute)
	sum := st.WaitSettled(wctx, expected)
	wcancel()
	stopSampling()
	<-sampled
	t.Logf("longest stall: Sage %s from +%s, sync-state %s from +%s; %+v", inSage.stall().Round(time.Millisecond),
		inSage.longestFrom().Sub(start).Round(time.Millisecond), inShop.stall().Round(time.Millisecond),
		inShop.longestFrom().Sub(start).Round(time.Millisecond), sum)
	if !sum.OK() || sum.Synced != len(expected) {
		t.Fatalf("not every event arrived once: %+v", sum)
	}
	if inSage.stall() > 5*time.Second || inShop.stall() > 5*time.Second {
		t.Errorf("progress stood still for longer than 5 s (Sage %s, sync-state %s)", inSage.stall(), inShop.stall())
	}
}
