package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// tracingBenchCommand reproduces the figures.
const tracingBenchCommand = "go test -run '^$' -bench BenchmarkPipelineTracing -benchtime 3x -timeout 30m ./cmd/ledger-dev"

// BenchmarkPipelineTracing measures what tracing costs the whole pipeline:
// the same workload (a shop of invoices and customers, webhook to sync-state)
// once with tracing off (the default: ids and propagation, nothing recorded)
// and once on, every span exported over OTLP/HTTP to a local collector stub
// (an httptest server accepting POST /v1/traces). Each run gets a fresh
// stack. It reports, per synced entity, the wall time from seeding to every
// sync-state row settled and the CPU time the process spent meanwhile (the
// process holds every service and both simulators; Postgres and NATS's disk
// are outside it), and the on/off ratios:
//
//	go test -run '^$' -bench BenchmarkPipelineTracing -benchtime 3x -timeout 30m ./cmd/ledger-dev
//
// LEDGER_TRACING_BENCH_INVOICES (default 200) sizes the shop.
func BenchmarkPipelineTracing(b *testing.B) {
	invoices := 200
	if v := os.Getenv("LEDGER_TRACING_BENCH_INVOICES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("LEDGER_TRACING_BENCH_INVOICES=%q: use a positive count", v)
		}
		invoices = n
	}
	b.Logf("reproduce: %s", tracingBenchCommand)
	var wallOff, wallOn, cpuOff, cpuOn time.Duration
	var entities int
	for i := range b.N {
		// Alternate the order so neither mode always runs on a warm machine.
		modes := []bool{false, true}
		if i%2 == 1 {
			modes = []bool{true, false}
		}
		for _, on := range modes {
			r := runTracedPipeline(b, on, invoices, uint64(i))
			entities += r.entities
			if on {
				wallOn, cpuOn = wallOn+r.wall, cpuOn+r.cpu
				b.Logf("tracing on:  %d entities in %s wall, %s CPU; the collector got %d exports, %d KiB",
					r.entities, r.wall.Round(time.Millisecond), r.cpu.Round(time.Millisecond), r.exports, r.bytes>>10)
			} else {
				wallOff, cpuOff = wallOff+r.wall, cpuOff+r.cpu
				b.Logf("tracing off: %d entities in %s wall, %s CPU", r.entities, r.wall.Round(time.Millisecond), r.cpu.Round(time.Millisecond))
			}
		}
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(entities/2) }
	b.ReportMetric(per(wallOff), "wall-ms/entity-off")
	b.ReportMetric(per(wallOn), "wall-ms/entity-on")
	b.ReportMetric(per(cpuOff), "cpu-ms/entity-off")
	b.ReportMetric(per(cpuOn), "cpu-ms/entity-on")
	b.ReportMetric(float64(wallOn)/float64(wallOff), "wall-ratio")
	b.ReportMetric(float64(cpuOn)/float64(cpuOff), "cpu-ratio")
	b.Logf("tracing on/off: wall %.3f, CPU %.3f (%d runs of %d invoices each way)",
		float64(wallOn)/float64(wallOff), float64(cpuOn)/float64(cpuOff), b.N, invoices)
}

type tracedRun struct {
	entities       int
	wall, cpu      time.Duration
	exports, bytes int64
}

// runTracedPipeline runs one shop through a fresh stack, tracing on or off.
func runTracedPipeline(b *testing.B, on bool, invoices int, seed uint64) tracedRun {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	var exports, bytes atomic.Int64
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			exports.Add(1)
			bytes.Add(n)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	b.Setenv("OTEL_TRACES_EXPORTER", "none")
	if on {
		b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
		b.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st, err := stack.Start(ctx, stack.Options{StateDir: b.TempDir(), Log: slog.New(slog.DiscardHandler),
		ShopDrainInterval: 100 * time.Millisecond})
	if err != nil {
		b.Fatalf("starting the stack: %v", err)
	}
	closed := false
	defer func() {
		if !closed {
			st.Close()
		}
	}()
	tenant := fmt.Sprintf("trace-bench-%d", seed)
	if err := st.Onboard(ctx, tenant, "Tracing benchmark"); err != nil {
		b.Fatalf("onboarding: %v", err)
	}

	b.StartTimer()
	cpu0, start := cpuTime(b), time.Now()
	res := st.Shop.Seed(rand.New(rand.NewPCG(2026, seed)), magentosim.Options{Customers: invoices / 4, Invoices: invoices, GuestShare: 0.3})
	expected := stack.ExpectSeed(res)
	sum := st.WaitSettled(ctx, expected)
	wall, cpu := time.Since(start), cpuTime(b)-cpu0
	b.StopTimer()
	if !sum.OK() || sum.Synced != len(expected) {
		b.Fatalf("pipeline did not settle (tracing on: %v): %+v", on, sum)
	}
	// Stopping the stack flushes the exporter's last batch.
	st.Close()
	closed = true
	if on && exports.Load() == 0 {
		b.Fatal("tracing on, but the collector received nothing")
	}
	if !on && exports.Load() != 0 {
		b.Fatal("tracing off, but the collector received exports")
	}
	return tracedRun{entities: len(expected), wall: wall, cpu: cpu, exports: exports.Load(), bytes: bytes.Load()}
}

// cpuTime is the user and system time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
