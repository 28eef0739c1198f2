package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// BenchmarkBackfillSyncState backfills succeeded runs into the Magento
// simulator end to end: BackfillSyncState walks sync_runs and publishes to
// RESULTS, the real statecallback delivers every row to the shop over HTTP, and
// the backfill ends once the shop confirmed all of them. It reports rows per
// second (until every row is in the shop) and peak memory of the process, which
// holds the whole stack (services and both simulators; Postgres is its own
// process). Each size gets a fresh stack. Run it once per size:
//
//	go test -run '^$' -bench BackfillSyncState -benchtime 1x -timeout 30m ./cmd/ledger-dev
//
// LEDGER_BACKFILL_BENCH_ROWS=20000,100000 (the default) picks the sizes.
func BenchmarkBackfillSyncState(b *testing.B) {
	sizes := []int{20_000, 100_000}
	if v := os.Getenv("LEDGER_BACKFILL_BENCH_ROWS"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				b.Fatalf("LEDGER_BACKFILL_BENCH_ROWS=%q: use comma-separated row counts", v)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			for range b.N {
				benchBackfill(b, n)
			}
		})
	}
}

func benchBackfill(b *testing.B, n int) {
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	st, err := stack.Start(ctx, stack.Options{StateDir: b.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatalf("starting the stack: %v", err)
	}
	defer st.Close()
	const tenant = "bench-shop"
	if err := st.Onboard(ctx, tenant, "Backfill benchmark"); err != nil {
		b.Fatalf("onboarding: %v", err)
	}
	ops, stopOps, err := st.Admin()
	if err != nil {
		b.Fatal(err)
	}
	defer stopOps()
	const firstID = 1_000_000
	insertStart := time.Now()
	if err := st.InsertSucceededRuns(ctx, tenant, "invoice", firstID, n, time.Now().Add(-72*time.Hour)); err != nil {
		b.Fatal(err)
	}
	b.Logf("inserted %d succeeded runs in %s", n, time.Since(insertStart).Round(time.Millisecond))

	runtime.GC()
	heapBefore := heapObjects()
	sampler := startMemSampler(50 * time.Millisecond)
	b.StartTimer()
	start := time.Now()
	msgs, err := backfill(ctx, ops, &ledgerv1.BackfillSyncStateRequest{TenantId: tenant, EntityTypes: []string{"invoice"}})
	elapsed := time.Since(start)
	b.StopTimer()
	peakHeap, peakRSS := sampler.stop()
	if err != nil {
		b.Fatalf("backfill: %v", err)
	}
	last := msgs[len(msgs)-1]
	if !last.GetDone() || last.GetPushed() != int64(n) || last.GetFailed() != 0 {
		b.Fatalf("backfill ended with %v", last)
	}
	// Every row is in the shop (checked after the clock stopped).
	synced := 0
	for id := int64(firstID); id < firstID+int64(n); id++ {
		if row, ok := st.Shop.SyncState("invoice", id); ok && row.SyncStatus == "synced" {
			synced++
		}
	}
	if synced != n {
		b.Fatalf("%d of %d rows are synced in the shop", synced, n)
	}
	runtime.GC()
	heapAfter := heapObjects()
	rate := float64(n) / elapsed.Seconds()
	mb := func(v uint64) float64 { return float64(v) / (1 << 20) }
	b.ReportMetric(rate, "rows/s")
	b.ReportMetric(mb(peakHeap), "peak-heap-MB")
	b.ReportMetric(mb(peakRSS), "peak-RSS-MB")
	b.ReportMetric(mb(heapAfter-min(heapAfter, heapBefore)), "retained-MB")
	b.ReportMetric(0, "ns/op") // the wall time is in rows/s
	fmt.Fprintf(os.Stderr, "backfill %d rows: %s, %.0f rows/s; heap before %.1f MB, peak %.1f MB, after %.1f MB (the shop simulator keeps every row); peak RSS %.1f MB\n",
		n, elapsed.Round(time.Millisecond), rate, mb(heapBefore), mb(peakHeap), mb(heapAfter), mb(peakRSS))
}

// heapObjects is the memory occupied by heap objects (live and not yet swept).
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// memSampler records the peak heap and resident set while it runs.
type memSampler struct {
	done      chan struct{}
	wg        sync.WaitGroup
	heap, rss uint64
}

func startMemSampler(every time.Duration) *memSampler {
	m := &memSampler{done: make(chan struct{})}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			m.heap = max(m.heap, heapObjects())
			m.rss = max(m.rss, residentBytes())
			select {
			case <-m.done:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memSampler) stop() (heap, rss uint64) {
	close(m.done)
	m.wg.Wait()
	return m.heap, m.rss
}

// residentBytes reads VmRSS from /proc/self/status (0 where there is none).
func residentBytes() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
