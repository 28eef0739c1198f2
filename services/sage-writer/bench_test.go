package sagewriter_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// benchCommand reproduces the figures.
const benchCommand = "go test -run '^$' -bench BenchmarkSageWriter -benchtime 1x ./services/sage-writer/ (add -short for the scaled-down fairness backlog)"

// BenchmarkSageWriter measures, in one run against the simulator: Sage calls
// per synced document, utilisation of a per-business limit and fairness between
// a tenant with a large backlog and many small tenants.
func BenchmarkSageWriter(b *testing.B) {
	b.Logf("reproduce: %s", benchCommand)
	b.Run("calls", func(b *testing.B) { b.Logf("reproduce: %s", benchCommand); benchCalls(b) })
	b.Run("utilisation", benchUtilisation)
	b.Run("fairness", func(b *testing.B) {
		backlog, small, secs := 20_000, 50, 20
		if testing.Short() {
			backlog, small, secs = 2_000, 20, 8
		}
		for range b.N {
			r := runFairness(b, backlog, small, secs)
			b.ReportMetric(float64(r.alone.p99.Milliseconds()), "p99-alone-ms")
			b.ReportMetric(float64(r.withBacklog.p99.Milliseconds()), "p99-backlog-ms")
			b.ReportMetric(r.ratio(), "p99-ratio")
			b.Logf("fairness: backlog %d events on one tenant, %d tenants × 1 event/s for %ds: small tenants' p50/p99 alone %s/%s, next to the backlog %s/%s (ratio %.2f, goal ≤ 2); backlog tenant synced %d meanwhile",
				backlog, small, secs, r.alone.p50, r.alone.p99, r.withBacklog.p50, r.withBacklog.p99, r.ratio(), r.bigSynced)
		}
	})
}

// simCalls sums the simulator's API calls (not /token) by route prefix.
func simCalls(sim *sagesim.Server) (api, refData, token int) {
	for _, c := range sim.Calls() {
		method, path, _ := strings.Cut(c.Route, " ")
		switch {
		case path == "/token":
			token += c.Count
		case strings.HasPrefix(path, "/v3.1/"):
			api += c.Count
			for _, ref := range []string{"tax_rates", "ledger_accounts", "bank_accounts", "payment_methods", "currencies", "financial_settings", "business_settings"} {
				if method == "GET" && strings.HasPrefix(path, "/v3.1/"+ref) {
					refData += c.Count
				}
			}
		}
	}
	return api, refData, token
}

func benchCalls(b *testing.B) {
	for range b.N {
		const n = 200
		f := newFleet(b, sagesim.Config{Seed: 1})
		tenant := f.addTenants("calls", 1)[0]
		cfg := f.config()
		cfg.Budget.BusinessPerMinute, cfg.Budget.BusinessBurst = 60_000, 10
		f.start(cfg, f.st, true)
		phase := func(name string, mk func(run string, i int) *ledgerv1.SageWrite) float64 {
			api0, ref0, tok0 := simCalls(f.sim)
			runs := f.newRuns(tenant, "invoice.created", n)
			for i, run := range runs {
				f.publish(mk(run, i))
			}
			if c := f.waitTerminal(runs); c[store.RunSucceeded] != n {
				b.Fatalf("%s: %v", name, c)
			}
			api, ref, tok := simCalls(f.sim)
			perDoc := float64(api-api0) / n
			b.ReportMetric(perDoc, "calls/doc-"+name)
			b.ReportMetric(float64(ref-ref0)/n, "refdata/doc-"+name)
			b.Logf("%-22s %d documents: %.2f Sage API calls per document, %.3f reference-data calls per document, %d token calls",
				name, n, perDoc, float64(ref-ref0)/n, tok-tok0)
			return perDoc
		}
		// Customer 1's contact is created once up front.
		seed := f.newRuns(tenant, "invoice.created", 1)
		f.publish(f.invoiceWrite(tenant, seed[0], 100_000, 1))
		f.waitTerminal(seed)
		phase("invoice+known-contact", func(run string, i int) *ledgerv1.SageWrite { return f.invoiceWrite(tenant, run, i+1, 1) })
		phase("invoice+new-contact", func(run string, i int) *ledgerv1.SageWrite {
			return f.invoiceWrite(tenant, run, 1000+i, 1000+i)
		})
		phase("payment", func(run string, i int) *ledgerv1.SageWrite { return f.paymentWrite(tenant, run, i+1, 1) })
		if len(f.sim.Payments(f.businessOf(tenant))) != n || f.deadLetters() != 0 {
			b.Fatalf("%d payments, %d dead letters", len(f.sim.Payments(f.businessOf(tenant))), f.deadLetters())
		}
	}
}

func benchUtilisation(b *testing.B) {
	for range b.N {
		const limit = 600 // per business per minute, in the simulator and in the writer
		n := 300
		if testing.Short() {
			n = 120
		}
		f := newFleet(b, sagesim.Config{Seed: 2})
		tenant := f.addTenants("util", 1)[0]
		cfg := f.config()
		cfg.Budget.BusinessPerMinute, cfg.Budget.BusinessBurst = limit, 1
		f.start(cfg, f.st, true)
		seed := f.newRuns(tenant, "invoice.created", 1)
		f.publish(f.invoiceWrite(tenant, seed[0], 100_000, 1))
		f.waitTerminal(seed)
		if err := f.sim.SetFaults(sagesim.Faults{RateLimitPerMinute: limit}); err != nil {
			b.Fatal(err)
		}
		// Time passing is what refills the writer's per-business budget
		// (burst 1) after the seed's calls: the measured window starts full.
		time.Sleep(time.Second)
		api0, _, _ := simCalls(f.sim)
		throttled0 := f.sim.CallCount("POST /v3.1/sales_invoices", 429)
		runs := f.newRuns(tenant, "invoice.created", n)
		start := time.Now()
		for i, run := range runs {
			f.publish(f.invoiceWrite(tenant, run, i+1, 1))
		}
		if c := f.waitTerminal(runs); c[store.RunSucceeded] != n {
			b.Fatalf("%v", c)
		}
		elapsed := time.Since(start)
		api, _, _ := simCalls(f.sim)
		throttled := f.sim.CallCount("POST /v3.1/sales_invoices", 429) - throttled0
		ok := api - api0 - throttled
		// The limit admits `limit` calls in any minute; over the elapsed time
		// (the first call may go at once) it admits 1 + limit × elapsed/1min.
		capacity := 1 + float64(limit)*elapsed.Minutes()
		util := 100 * float64(ok) / capacity
		b.ReportMetric(util, "utilisation-%")
		b.ReportMetric(float64(f.deadLetters()), "dead-letters")
		b.Logf("utilisation: %d writes against a %d/min per-business limit in %s: %d accepted calls of a capacity of %.0f = %.1f%% (goal ≥ 95%%), %d answered 429, %d dead letters",
			n, limit, elapsed.Round(time.Millisecond), ok, capacity, util, throttled, f.deadLetters())
	}
}

type latencies struct{ p50, p99 time.Duration }

type fairnessResult struct {
	alone, withBacklog latencies
	bigSynced          int
}

func (r fairnessResult) ratio() float64 {
	return float64(r.withBacklog.p99) / float64(max(r.alone.p99, time.Millisecond))
}

// runFairness measures the small tenants' end-to-end latency (publish → result
// on RESULTS) alone, then next to one tenant with a backlog.
func runFairness(tb testing.TB, backlog, small, secs int) fairnessResult {
	f := newFleet(tb, sagesim.Config{Seed: 4, Faults: sagesim.Faults{Latency: 20 * time.Millisecond, LatencyJitter: 30 * time.Millisecond}})
	smalls := f.addTenants("small", small)
	big := f.addTenants("big", 1)[0]
	f.start(f.config(), f.st, true)

	var mu sync.Mutex
	done := map[string]time.Time{}
	sub, err := f.nc.Subscribe("ledger.result.>", func(m *nats.Msg) {
		var r ledgerv1.SyncResult
		if proto.Unmarshal(m.Data, &r) == nil {
			mu.Lock()
			done[r.SyncRunId] = time.Now()
			mu.Unlock()
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = sub.Unsubscribe() })

	measure := func(customer int) latencies {
		runs := map[string][]string{}
		for _, t := range smalls {
			runs[t] = f.newRuns(t, "invoice.created", secs)
		}
		sent := map[string]time.Time{}
		var all []string
		start := time.Now()
		for s := range secs {
			for i, t := range smalls {
				at := start.Add(time.Duration(s)*time.Second + time.Duration(i)*time.Second/time.Duration(small))
				time.Sleep(time.Until(at)) // the load's pace (one event a second per tenant) is what is measured against
				run := runs[t][s]
				f.publish(f.invoiceWrite(t, run, customer*1000+s, customer))
				sent[run] = time.Now()
				all = append(all, run)
			}
		}
		f.waitTerminal(all)
		var lat []time.Duration
		devtest.Eventually(tb, "a result for every run", func() bool {
			lat = lat[:0]
			mu.Lock()
			for _, run := range all {
				if d, ok := done[run]; ok {
					lat = append(lat, d.Sub(sent[run]))
				}
			}
			mu.Unlock()
			return len(lat) == len(all)
		}, devtest.Explain(func() string { return fmt.Sprintf("%d of %d results seen", len(lat), len(all)) }))
		slices.Sort(lat)
		q := func(p float64) time.Duration { return lat[int(math.Ceil(p*float64(len(lat))))-1] }
		return latencies{p50: q(0.50), p99: q(0.99)}
	}

	var r fairnessResult
	r.alone = measure(1)

	// The backlog: published in bulk, as a shop's outbox drain after an outage.
	bigRuns := f.newRuns(big, "invoice.created", backlog)
	for i, run := range bigRuns {
		w := f.invoiceWrite(big, run, i+1, i%50+1)
		data, _ := proto.Marshal(w)
		m := nats.NewMsg(bus.SageSubject(big, "invoice"))
		m.Data = data
		m.Header.Set(bus.HeaderType, string(w.ProtoReflect().Descriptor().FullName()))
		if _, err := f.js.PublishMsgAsync(m); err != nil {
			tb.Fatal(err)
		}
	}
	select {
	case <-f.js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		tb.Fatal("backlog not published")
	}
	bigBefore := len(f.sim.Invoices(f.businessOf(big)))
	r.withBacklog = measure(2)
	r.bigSynced = len(f.sim.Invoices(f.businessOf(big))) - bigBefore
	if f.deadLetters() != 0 {
		tb.Fatalf("%d dead letters", f.deadLetters())
	}
	return r
}

// TestFairnessBacklogDoesNotDelayOthers is the fairness benchmark scaled down:
// a tenant with a backlog next to tenants sending one event a second.
func TestFairnessBacklogDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	r := runFairness(t, 2_000, 10, 5)
	t.Logf("small tenants' p50/p99 alone %s/%s, next to a 2,000-event backlog %s/%s (ratio %.2f); backlog synced %d meanwhile",
		r.alone.p50, r.alone.p99, r.withBacklog.p50, r.withBacklog.p99, r.ratio(), r.bigSynced)
	// 2× the latency alone, with a 150 ms floor for scheduler noise on a busy
	// CI machine (the benchmark reports the plain ratio).
	if limit := max(2*r.alone.p99, r.alone.p99+150*time.Millisecond); r.withBacklog.p99 > limit {
		t.Fatalf("p99 next to the backlog %s exceeds %s", r.withBacklog.p99, limit)
	}
	if r.bigSynced == 0 {
		t.Fatal("the backlog tenant made no progress")
	}
}
