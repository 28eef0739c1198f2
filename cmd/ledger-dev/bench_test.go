package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// benchConfig is what the BENCH_* variables choose (see TestBench).
type benchConfig struct {
	Events, Shops              int
	PacedSeconds, PacedRate    int
	LowRate                    int    // a second paced run below the pipeline's capacity (0: none)
	Sync                       string // both | always | off
	IngestWebhooks, IngestShop int
	Backlog                    int // events left in OUTBOX while the consumers are down, then drained (0: none)
	Dir                        string
}

func benchConfigFromEnv(t *testing.T) benchConfig {
	c := benchConfig{Events: 5200, Shops: 8, PacedSeconds: 20, PacedRate: 200, LowRate: 50, Sync: "both", IngestWebhooks: 10000, IngestShop: 100,
		Dir: os.Getenv("BENCH_DIR")}
	num := func(name string, dst *int, least int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < least {
				t.Fatalf("%s=%q: use a whole number of at least %d", name, v, least)
			}
			*dst = n
		}
	}
	num("BENCH_EVENTS", &c.Events, 100)
	num("BENCH_SHOPS", &c.Shops, 1)
	num("BENCH_PACED_SECONDS", &c.PacedSeconds, 0)
	num("BENCH_PACED_RATE", &c.PacedRate, 1)
	num("BENCH_PACED_LOW_RATE", &c.LowRate, 0)
	num("BENCH_INGEST_WEBHOOKS", &c.IngestWebhooks, 0)
	num("BENCH_BACKLOG", &c.Backlog, 0)
	if v := os.Getenv("BENCH_NATS_SYNC"); v != "" {
		if v != "both" && v != "always" && v != "off" {
			t.Fatalf("BENCH_NATS_SYNC=%q: use both, always or off", v)
		}
		c.Sync = v
	}
	if c.Dir == "" {
		c.Dir = t.TempDir()
	}
	return c
}

// The processes whose CPU and memory the benchmark reports, in report order.
var (
	ledgerProcs = []string{"ingest", "mapper", "sage-writer", "statecallback", "admin"}
	allProcs    = append(slices.Clone(ledgerProcs), "nats-server", "postgres", "bench")
)

// benchServices are the service binaries the benchmark runs.
var benchServices = []struct{ name, pkg, addrVar string }{
	{"ingest", "services/ingest/cmd/ingest", "INGEST_ADDR"},
	{"mapper", "services/mapper/cmd/mapper", "MAPPER_ADDR"},
	{"sage-writer", "services/sage-writer/cmd/sage-writer", "WRITER_ADDR"},
	{"statecallback", "services/statecallback/cmd/statecallback", "STATECALLBACK_ADDR"},
	{"admin", "services/admin/cmd/admin", "ADMIN_HTTP_ADDR"},
}

// pgFlushWait covers Postgres's statistics flush: an idle backend reports its
// counters to pg_stat_database at most 10 s late (PGSTAT_IDLE_INTERVAL).
const pgFlushWait = 11 * time.Second

type benchEnv struct {
	t   *testing.T
	ctx context.Context
	cfg benchConfig

	st                  *stack.Stack
	natsProc            *benchProc
	natsURL, monitorURL string
	natsPort, monPort   int
	profPort            int
	natsStore, natsBin  string
	natsSync            bool
	services            map[string]*benchProc
	pgPID               int
	nc                  *nats.Conn // the benchmark's own subscriptions
	tr                  atomic.Pointer[tracker]
	shops               []*benchShop
	rng                 *rand.Rand
	idleCommitsPerSec   float64
	pg                  *devstack.Postgres // the benchmark's own cluster
	statements          bool               // pg_stat_statements is loaded

	out strings.Builder
}

func (b *benchEnv) printf(format string, args ...any) {
	fmt.Fprintf(&b.out, format, args...)
}

// TestBench is `make bench` (it runs only when LEDGER_BENCH is set): every
// service its own process, nats-server its own process, N simulated shops,
// the simulators at zero latency and Sage's limits lifted; a raw JetStream
// relay of the pipeline's shape as the baseline in the same run; then a burst
// and a paced run through the pipeline, the same with NATS's sync_interval off,
// and ingest on its own. The report goes to BENCH_DIR/report.txt (and the
// test log); its last line is the one-line summary. docs/performance.md says
// how to read it.
func TestBench(t *testing.T) {
	if os.Getenv("LEDGER_BENCH") == "" {
		t.Skip("make bench runs this (LEDGER_BENCH=1)")
	}
	cfg := benchConfigFromEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &benchEnv{t: t, ctx: ctx, cfg: cfg, rng: rand.New(rand.NewPCG(13, 1)), services: map[string]*benchProc{}}
	began := time.Now()
	b.setup()
	defer b.teardown()

	loadavg, _ := os.ReadFile("/proc/loadavg")
	b.printf("Ledger pipeline benchmark, %s; %d cores; load average at start %s", time.Now().UTC().Format(time.RFC3339), nproc(), loadavg)
	b.printf("reproduce: make bench BENCH_EVENTS=%d BENCH_SHOPS=%d BENCH_PACED_SECONDS=%d BENCH_PACED_RATE=%d BENCH_PACED_LOW_RATE=%d BENCH_NATS_SYNC=%s BENCH_INGEST_WEBHOOKS=%d BENCH_BACKLOG=%d\n",
		cfg.Events, cfg.Shops, cfg.PacedSeconds, cfg.PacedRate, cfg.LowRate, cfg.Sync, cfg.IngestWebhooks, cfg.Backlog)
	b.printf("every service its own process (built from this tree), nats-server %s its own process, Postgres (fsync off) its own; simulators, load and measurement in the test process (\"bench\")\n", "v2.15.3")
	b.printf("idle: %.1f Postgres commits/s with no traffic (background scans), subtracted from the trailing %s of each phase's Postgres window\n\n",
		b.idleCommitsPerSec, pgFlushWait)

	type syncRun struct {
		always             bool
		burst, paced, low  *pipelineResult
		baselineRate       float64 // the mean of the two relay runs
		baselineRuns       [2]float64
		fsyncP50, fsyncP99 time.Duration
	}
	var runs []*syncRun
	for _, always := range []bool{true, false} {
		if (always && cfg.Sync == "off") || (!always && cfg.Sync == "always") {
			continue
		}
		b.restartNATS(always)
		r := &syncRun{always: always}
		if always {
			r.fsyncP50, r.fsyncP99 = fsyncLatency(t, b.natsStore, 200)
		}
		relay := func(i int) {
			took, err := runRelay(ctx, b.natsURL, cfg.Events, 1024)
			if err != nil {
				t.Fatalf("baseline relay: %v", err)
			}
			r.baselineRuns[i] = float64(cfg.Events) / took.Seconds()
			t.Logf("sync=%v baseline relay %d: %d messages in %s, %.0f/s", always, i+1, cfg.Events, took.Round(time.Millisecond), r.baselineRuns[i])
		}
		// The relay runs right before and right after the burst: its rate
		// follows the disk's fsync latency, which other work on the machine moves.
		relay(0)
		r.burst = b.pipeline(fmt.Sprintf("burst, sync_interval %s", syncName(always)), b.burstFeed, always)
		relay(1)
		r.baselineRate = (r.baselineRuns[0] + r.baselineRuns[1]) / 2
		if always && cfg.PacedSeconds > 0 {
			r.paced = b.pipeline(fmt.Sprintf("paced %d events/s for %d s, sync_interval %s", cfg.PacedRate, cfg.PacedSeconds, syncName(always)),
				func() int { return b.pacedFeed(cfg.PacedRate, cfg.PacedSeconds) }, false)
			if cfg.LowRate > 0 {
				r.low = b.pipeline(fmt.Sprintf("paced %d events/s for %d s, sync_interval %s", cfg.LowRate, cfg.PacedSeconds, syncName(always)),
					func() int { return b.pacedFeed(cfg.LowRate, cfg.PacedSeconds) }, false)
			}
		}
		runs = append(runs, r)
		b.printf("== NATS sync_interval %s\n", syncName(always))
		if always {
			b.printf("disk: write 4 KB + fsync in the NATS store directory, 200 times: p50 %.2f ms, p99 %.2f ms\n", ms(r.fsyncP50), ms(r.fsyncP99))
		}
		b.printf("baseline: raw JetStream relay (publish with acks, %d hops of fetch %d → publish → ack, file storage), %d messages: %.0f msgs/s before the burst, %.0f after, mean %.0f\n",
			relayHops, relayBatch, cfg.Events, r.baselineRuns[0], r.baselineRuns[1], r.baselineRate)
		for _, p := range []*pipelineResult{r.burst, r.paced, r.low} {
			if p != nil {
				b.report(p, r.baselineRate)
			}
		}
	}
	if len(runs) == 2 {
		on, off := runs[0], runs[1]
		b.printf("== durability cost (sync_interval always vs off)\n")
		b.printf("baseline relay: %.0f vs %.0f msgs/s (always is %.2f of off)\n", on.baselineRate, off.baselineRate, on.baselineRate/off.baselineRate)
		b.printf("pipeline burst: %.1f vs %.1f events/s (always is %.2f of off); CPU %.2f vs %.2f ms/event\n\n",
			on.burst.rate(), off.burst.rate(), on.burst.rate()/off.burst.rate(), on.burst.cpuMsPerEvent(), off.burst.cpuMsPerEvent())
	}
	if cfg.Backlog > 0 {
		b.restartNATS(true)
		b.backlog(cfg.Backlog)
	}
	if cfg.IngestWebhooks > 0 {
		if !b.natsSync {
			b.restartNATS(true)
		}
		b.ingestAlone()
	}
	b.printf("profiles (CPU for %d s from the start of the always burst, allocations since start; *.top.txt flat, *.cum.txt cumulative) and per-service logs: %s\n", profileSeconds, cfg.Dir)
	b.printf("whole run: %s\n", time.Since(began).Round(time.Second))
	first := runs[0]
	p99 := 0.0
	if first.paced != nil {
		p99 = ms(quantile(first.paced.times.ToResult, 0.99))
	}
	b.printf("bench: events_per_s=%.1f baseline_events_per_s=%.0f ratio=%.3f pg_commits_per_event=%.1f cpu_ms_per_event=%.1f p99_ms=%.0f\n",
		first.burst.rate(), first.baselineRate, first.burst.rate()/first.baselineRate, first.burst.pgPerEvent().Commits, first.burst.cpuMsPerEvent(), p99)
	if err := os.WriteFile(filepath.Join(cfg.Dir, "report.txt"), []byte(b.out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("report (%s):\n%s", filepath.Join(cfg.Dir, "report.txt"), b.out.String())
	if first.burst.times.MissingSync > 0 || first.burst.incomplete {
		t.Errorf("the burst did not complete: %+v missing sync-state callbacks", first.burst.times.MissingSync)
	}
}

func syncName(always bool) string {
	if always {
		return "always"
	}
	return "off (default 2 min)"
}

func nproc() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// setup starts nats-server, the stack (Postgres, simulators) and every service
// as a process, and onboards the shops.
func (b *benchEnv) setup() {
	t, ctx := b.t, b.ctx
	var err error
	b.natsBin = filepath.Join(b.cfg.Dir, "nats-server")
	// One go build for every binary (each named after its package: ingest,
	// mapper, sage-writer, statecallback, admin, nats-server).
	pkgs := []string{"github.com/nats-io/nats-server/v2"}
	for _, s := range benchServices {
		pkgs = append(pkgs, "github.com/ledgersync/ledger/"+s.pkg)
	}
	if o, err := exec.Command("go", append([]string{"build", "-o", b.cfg.Dir + "/"}, pkgs...)...).CombinedOutput(); err != nil {
		t.Fatalf("building %v: %v\n%s", pkgs, err, o)
	}
	if b.natsPort, err = freePort(); err != nil {
		t.Fatal(err)
	}
	if b.monPort, err = freePort(); err != nil {
		t.Fatal(err)
	}
	if b.profPort, err = freePort(); err != nil {
		t.Fatal(err)
	}
	b.natsStore = filepath.Join(b.cfg.Dir, "nats-store")
	_ = os.RemoveAll(b.natsStore)
	b.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", b.natsPort)
	b.monitorURL = fmt.Sprintf("http://127.0.0.1:%d", b.monPort)
	b.startNATS(true)

	logFile, err := os.Create(filepath.Join(b.cfg.Dir, "stack.log"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if b.pg, b.statements, err = benchPostgres(ctx); err != nil {
		t.Fatalf("starting postgres: %v", err)
	}
	t.Setenv(devstack.EnvDatabaseURL, b.pg.URL) // the stack's database is this cluster
	if b.st, err = stack.Start(ctx, stack.Options{StateDir: b.cfg.Dir, Log: log, External: true, NATSURL: b.natsURL}); err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	if b.pgPID, err = postmasterPID(ctx, b.st.Store.Pool()); err != nil {
		t.Fatalf("postmaster pid: %v", err)
	}
	if b.statements {
		if _, err := b.st.Store.Pool().Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
			t.Fatalf("pg_stat_statements: %v", err)
		}
	}
	addr := map[string]string{}
	for _, k := range []string{"ingest", "mapper", "sage-writer", "statecallback", "admin", "admin-grpc"} {
		addr[k] = freeAddr(t)
	}
	b.st.IngestURL, b.st.AdminHTTPURL, b.st.AdminGRPCAddr = "http://"+addr["ingest"], "http://"+addr["admin"], addr["admin-grpc"]
	for _, s := range benchServices {
		p := &benchProc{name: s.name, bin: filepath.Join(b.cfg.Dir, s.name), log: filepath.Join(b.cfg.Dir, s.name+".log"), addr: addr[s.name]}
		p.env = append(b.st.ServiceEnv(s.name), s.addrVar+"="+addr[s.name], "LEDGER_PPROF=true")
		switch s.name {
		case "sage-writer":
			// Sage's limits lifted: the simulator does not throttle, and the
			// writer's own pacing must not be what is measured. The tenant scan
			// is the production default, not the dev stack's 1 s.
			p.env = append(p.env, "SAGE_BUSINESS_RATE_PER_MINUTE=6000000", "SAGE_BUSINESS_BURST=10000",
				"SAGE_APP_REQUESTS_PER_DAY=1000000000", "WRITER_TENANT_SCAN=10s")
		case "admin":
			p.env = append(p.env, "ADMIN_GRPC_ADDR="+addr["admin-grpc"], "ADMIN_PUBLIC_URL="+b.st.AdminHTTPURL, "ADMIN_SAGE_RATE_PER_MINUTE=6000000")
		}
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		b.services[s.name] = p
	}
	for _, p := range b.services {
		devtest.Eventually(b.t, p.name+" ready", p.ready, devtest.Within(3*time.Minute))
	}

	if b.nc, err = nats.Connect(b.natsURL, nats.Name("bench-observer"), nats.MaxReconnects(-1)); err != nil {
		t.Fatal(err)
	}
	on := func(f func(*tracker, *nats.Msg, time.Time)) nats.MsgHandler {
		return func(m *nats.Msg) {
			if tr := b.tr.Load(); tr != nil {
				f(tr, m, time.Now())
			}
		}
	}
	if _, err := b.nc.Subscribe("ledger.outbox.>", on((*tracker).outbox)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.nc.Subscribe("ledger.result.>", on((*tracker).result)); err != nil {
		t.Fatal(err)
	}

	for i := range b.cfg.Shops {
		tenant := fmt.Sprintf("bench-%02d", i+1)
		s, err := newBenchShop(tenant, &b.tr, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		b.shops = append(b.shops, s)
		// Each shop its own Sage user and business, as separate merchants.
		if err := b.st.OnboardShop(ctx, tenant, "Bench shop "+tenant, s.shop, s.url, tenant+"-owner"); err != nil {
			t.Fatalf("onboarding %s: %v", tenant, err)
		}
		s.shop.SetDown(true)
		s.run()
	}
	// Idle cost: what the services commit with no traffic.
	time.Sleep(pgFlushWait) // Postgres's statistics flush: no condition to wait on
	a, err := readPG(ctx, b.st.Store.Pool())
	if err != nil {
		t.Fatal(err)
	}
	const idle = 10 * time.Second
	time.Sleep(idle) // the measured idle window itself
	c, err := readPG(ctx, b.st.Store.Pool())
	if err != nil {
		t.Fatal(err)
	}
	b.idleCommitsPerSec = float64(c.Commits-a.Commits) / idle.Seconds()
	t.Logf("stack up: %d shops onboarded; idle %.1f commits/s", len(b.shops), b.idleCommitsPerSec)
}

func (b *benchEnv) teardown() {
	for _, s := range b.shops {
		s.close()
	}
	for _, name := range ledgerProcs {
		if p := b.services[name]; p != nil {
			p.stop()
		}
	}
	if b.nc != nil {
		b.nc.Close()
	}
	if b.st != nil {
		b.st.Close()
	}
	if b.natsProc != nil {
		b.natsProc.stop()
	}
	if b.pg != nil {
		_ = b.pg.Stop()
	}
}

func (b *benchEnv) startNATS(always bool) {
	conf := filepath.Join(b.cfg.Dir, "nats.conf")
	if err := natsConfig(conf, b.natsPort, b.monPort, b.natsStore, always); err != nil {
		b.t.Fatal(err)
	}
	// prof_port serves the server's own pprof.
	f, _ := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "prof_port: %d\n", b.profPort)
	f.Close()
	b.natsProc = &benchProc{name: "nats-server", bin: b.natsBin, args: []string{"-c", conf}, log: filepath.Join(b.cfg.Dir, "nats-server.log")}
	if err := b.natsProc.start(); err != nil {
		b.t.Fatal(err)
	}
	if err := waitNATS(b.natsURL, 30*time.Second); err != nil {
		b.t.Fatal(err)
	}
	b.natsSync = always
}

// restartNATS restarts nats-server (same port, same store) with sync_interval
// always or off, and waits until every running service is ready again.
func (b *benchEnv) restartNATS(always bool) {
	if b.natsProc != nil && b.natsSync == always {
		return
	}
	b.natsProc.stop()
	b.startNATS(always)
	for _, name := range ledgerProcs {
		if p := b.services[name]; p != nil && p.cmd != nil {
			devtest.Eventually(b.t, name+" ready after the NATS restart", p.ready, devtest.Within(2*time.Minute))
		}
	}
}

// pids are the benchmark's processes (postgres: the postmaster).
func (b *benchEnv) pids() map[string]int {
	m := map[string]int{"nats-server": b.natsProc.pid(), "postgres": b.pgPID, "bench": os.Getpid()}
	for name, p := range b.services {
		m[name] = p.pid()
	}
	return m
}

type snapshot struct {
	cpu   map[string]time.Duration
	nats  natsCounters
	conn  nats.Statistics
	taken time.Time
}

func (b *benchEnv) snap() snapshot {
	s := snapshot{cpu: map[string]time.Duration{}, taken: time.Now(), conn: b.nc.Stats()}
	for name, pid := range b.pids() {
		if pid == 0 {
			continue
		}
		if name == "postgres" {
			s.cpu[name] = treeCPU(pid)
			continue
		}
		self, _, _, _ := procTimes(pid)
		s.cpu[name] = self
	}
	var err error
	if s.nats, err = readNATS(b.monitorURL); err != nil {
		b.t.Fatalf("NATS monitoring: %v", err)
	}
	return s
}

// peakRSS reads each process's peak resident set (kB) since resetPeaks;
// postgres is its largest process (shared buffers count in every backend).
func (b *benchEnv) peakRSS() map[string]int64 {
	m := map[string]int64{}
	for name, pid := range b.pids() {
		if pid == 0 {
			continue
		}
		if name == "postgres" {
			for _, c := range append(childPIDs(pid), pid) {
				m[name] = max(m[name], procStatusKB(c, "VmHWM"))
			}
			continue
		}
		m[name] = procStatusKB(pid, "VmHWM")
	}
	return m
}

func (b *benchEnv) resetPeaks() {
	for name, pid := range b.pids() {
		if name == "postgres" {
			for _, c := range append(childPIDs(pid), pid) {
				resetPeakRSS(c)
			}
			continue
		}
		if pid != 0 {
			resetPeakRSS(pid)
		}
	}
}

// pipelineResult is one phase through the whole pipeline.
type pipelineResult struct {
	name       string
	expected   int
	times      phaseTimes
	cpu        map[string]time.Duration
	pg         pgCounters
	statements []statementCount
	nats       natsCounters
	rss        map[string]int64
	incomplete bool
}

func (r *pipelineResult) span() time.Duration { return r.times.LastSync.Sub(r.times.First) }

func (r *pipelineResult) rate() float64 {
	if r.span() <= 0 {
		return 0
	}
	return float64(r.times.Events) / r.span().Seconds()
}

// cpuMsPerEvent is the CPU of Ledger's processes, NATS and Postgres per event
// (not the simulators' and load generator's).
func (r *pipelineResult) cpuMsPerEvent() float64 {
	var sum time.Duration
	for name, d := range r.cpu {
		if name != "bench" {
			sum += d
		}
	}
	return ms(sum) / float64(max(r.times.Events, 1))
}

type pgPerEvent struct{ Commits, Returned, Fetched, Inserted, Updated, Deleted float64 }

func (r *pipelineResult) pgPerEvent() pgPerEvent {
	n := float64(max(r.times.Events, 1))
	return pgPerEvent{float64(r.pg.Commits) / n, float64(r.pg.Returned) / n, float64(r.pg.Fetched) / n,
		float64(r.pg.Inserted) / n, float64(r.pg.Updated) / n, float64(r.pg.Deleted) / n}
}

// pipeline runs one phase: feed makes the events (and returns how many), then
// the phase lasts until every event has its result and its sync-state
// callback (or nothing moved for two minutes).
func (b *benchEnv) pipeline(name string, feed func() int, profile bool) *pipelineResult {
	t, ctx := b.t, b.ctx
	time.Sleep(pgFlushWait) // Postgres's statistics flush: no condition to wait on
	pg0, err := readPG(ctx, b.st.Store.Pool())
	if err != nil {
		t.Fatal(err)
	}
	if b.statements {
		if err := resetStatements(ctx, b.st.Store.Pool()); err != nil {
			t.Fatal(err)
		}
	}
	tr := newTracker()
	b.tr.Store(tr)
	b.resetPeaks()
	s0 := b.snap()
	var profWG sync.WaitGroup
	if profile {
		profWG.Add(1)
		go func() { defer profWG.Done(); b.cpuProfiles(profileSeconds) }()
	}
	expected := feed()
	r := &pipelineResult{name: name, expected: expected}
	lastMove, last := time.Now(), [3]int{}
	for {
		a, res, syn := tr.progress()
		if a >= expected && res >= a && syn >= res {
			break
		}
		if now := [3]int{a, res, syn}; now != last {
			last, lastMove = now, time.Now()
		} else if time.Since(lastMove) > 2*time.Minute {
			t.Logf("%s: stalled at accepted=%d results=%d synced=%d of %d", name, a, res, syn, expected)
			r.incomplete = true
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: %v", name, ctx.Err())
		}
		time.Sleep(50 * time.Millisecond) // the sampling interval of the phase's progress
	}
	s1 := b.snap()
	r.rss = b.peakRSS()
	r.times = tr.times()
	b.tr.Store(nil)
	r.cpu = map[string]time.Duration{}
	for k, v := range s1.cpu {
		r.cpu[k] = v - s0.cpu[k]
	}
	r.nats = s1.nats.sub(s0.nats)
	// The benchmark's own subscriptions are not the pipeline's traffic.
	r.nats.OutMsgs -= int64(s1.conn.InMsgs - s0.conn.InMsgs)
	r.nats.OutBytes -= int64(s1.conn.InBytes - s0.conn.InBytes)
	profWG.Wait()
	if profile {
		b.allocProfiles()
	}
	time.Sleep(pgFlushWait) // Postgres's statistics flush: no condition to wait on
	pg1, err := readPG(ctx, b.st.Store.Pool())
	if err != nil {
		t.Fatal(err)
	}
	r.pg = pg1.sub(pg0)
	if b.statements {
		if r.statements, err = readStatements(ctx, b.st.Store.Pool()); err != nil {
			t.Fatal(err)
		}
	}
	r.pg.Commits -= int64(b.idleCommitsPerSec * time.Since(s1.taken).Seconds())
	t.Logf("%s: %d events (%d expected) in %s: %.1f events/s", name, r.times.Events, expected, r.span().Round(time.Millisecond), r.rate())
	return r
}

// burstFeed seeds every shop while its cron is held, then lets them all go:
// BENCH_EVENTS events (a tenth customers, the rest invoices of which a third
// are paid: invoice.created + invoice.paid).
func (b *benchEnv) burstFeed() int {
	per := (b.cfg.Events + len(b.shops) - 1) / len(b.shops)
	before := 0
	for _, s := range b.shops {
		s.shop.SetDown(true)
		before += s.shop.OutboxCounts().Total()
	}
	for _, s := range b.shops {
		customers := max(per/10, 1)
		invoices := int(float64(per-customers) / 1.3)
		s.shop.Seed(b.rng, magentosim.Options{Customers: customers, Invoices: invoices, GuestShare: 0.2, PaidShare: 0.3})
	}
	after := 0
	for _, s := range b.shops {
		after += s.shop.OutboxCounts().Total()
	}
	for _, s := range b.shops {
		s.shop.SetDown(false)
	}
	return after - before
}

// pacedFeed creates events at rate per second for seconds across
// the shops (customers, invoices, a quarter of them paid), every 20 ms.
func (b *benchEnv) pacedFeed(rate, seconds int) int {
	before := 0
	for _, s := range b.shops {
		before += s.shop.OutboxCounts().Total()
	}
	const tick = 20 * time.Millisecond
	start := time.Now()
	made, i := 0, 0
	custs := make([][]int64, len(b.shops))
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for time.Since(start) < time.Duration(seconds)*time.Second {
		<-tk.C
		due := int(time.Since(start).Seconds() * float64(rate))
		for made < due {
			k := i % len(b.shops)
			s := b.shops[k]
			i++
			if b.rng.IntN(10) == 0 || len(custs[k]) == 0 {
				if c, err := s.shop.UpsertCustomer(magentosim.RandomCustomer(b.rng)); err == nil {
					custs[k] = append(custs[k], c.MagentoID)
				}
				made++
				continue
			}
			paid := b.rng.IntN(4) == 0
			var cust int64
			if b.rng.IntN(5) != 0 {
				cust = custs[k][b.rng.IntN(len(custs[k]))]
			}
			if _, err := s.shop.CreateRandomInvoice(b.rng, cust, paid); err == nil {
				made++
				if paid {
					made++
				}
			}
		}
	}
	after := 0
	for _, s := range b.shops {
		after += s.shop.OutboxCounts().Total()
	}
	return after - before
}

// report prints one pipeline phase.
func (b *benchEnv) report(r *pipelineResult, baseline float64) {
	tm := r.times
	n := float64(max(tm.Events, 1))
	b.printf("pipeline %s: %d events (%d webhooks queued) from first accepted to last sync-state in %.1f s = %.1f events/s, %.3f of the baseline\n",
		r.name, tm.Events, r.expected, r.span().Seconds(), r.rate(), r.rate()/baseline)
	if r.incomplete || tm.MissingSync > 0 {
		b.printf("  INCOMPLETE: %d events without a result, %d without a sync-state callback\n", tm.Events-len(tm.ToResult), tm.MissingSync)
	}
	lat := func(d []time.Duration) string {
		return fmt.Sprintf("p50 %.0f ms, p99 %.0f ms, max %.0f ms", ms(quantile(d, 0.5)), ms(quantile(d, 0.99)), ms(quantile(d, 1)))
	}
	b.printf("  latency webhook accepted → Sage result (RESULTS): %s\n", lat(tm.ToResult))
	b.printf("  latency webhook accepted → sync-state callback:   %s", lat(tm.ToSync))
	if tm.Superseded > 0 {
		b.printf(" (%d events had none of their own: a newer result of the same row was delivered, newest wins)", tm.Superseded)
	}
	b.printf("\n")
	var cpuParts []string
	var total, ledger time.Duration
	for _, name := range allProcs {
		d := r.cpu[name]
		cpuParts = append(cpuParts, fmt.Sprintf("%s %.2f", name, ms(d)/n))
		if name != "bench" {
			total += d
		}
		if slices.Contains(ledgerProcs, name) {
			ledger += d
		}
	}
	b.printf("  CPU ms/event: %s\n", strings.Join(cpuParts, ", "))
	b.printf("  CPU ms/event: Ledger's services %.2f + nats-server + postgres = %.2f (cpu_ms_per_event; \"bench\" = simulators, load and measurement, not counted)\n",
		ms(ledger)/n, ms(total)/n)
	pg := r.pgPerEvent()
	b.printf("  Postgres per event: %.1f commits, %.1f rows returned (seq+index scans), %.1f rows fetched (index), %.1f inserted, %.1f updated, %.1f deleted; %d connections opened in the phase\n",
		pg.Commits, pg.Returned, pg.Fetched, pg.Inserted, pg.Updated, pg.Deleted, r.pg.Sessions)
	b.printStatements(r.statements, tm.Events)
	b.printf("  NATS per event (varz, less the benchmark's own subscriptions): %.1f messages in, %.1f out, %.0f bytes in, %.0f out; JetStream (jsz): %.1f messages and %.0f bytes stored, %.2f API calls\n",
		float64(r.nats.InMsgs)/n, float64(r.nats.OutMsgs)/n, float64(r.nats.InBytes)/n, float64(r.nats.OutBytes)/n,
		float64(r.nats.Stored)/n, float64(r.nats.StoredBytes)/n, float64(r.nats.APICalls)/n)
	var rss []string
	for _, name := range allProcs {
		rss = append(rss, fmt.Sprintf("%s %.0f", name, float64(r.rss[name])/1024))
	}
	b.printf("  peak RSS MB: %s\n\n", strings.Join(rss, ", "))
}

// profileSeconds is the CPU profile's length: within ingest's write timeout
// (its request timeout, 10 s, plus 4 s), which bounds /debug/pprof/profile.
const profileSeconds = 12

// profiled are the services whose profiles the benchmark takes.
var profiled = []string{"ingest", "mapper", "sage-writer", "statecallback"}

// cpuProfiles takes a CPU profile of secs seconds from every profiled service
// and from nats-server at once, and writes the top functions beside them.
func (b *benchEnv) cpuProfiles(secs int) {
	var wg sync.WaitGroup
	urls := map[string]string{"nats-server": fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", b.profPort, secs)}
	for _, name := range profiled {
		urls[name] = fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", b.services[name].addr, secs)
	}
	for name, url := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.fetchProfile(url, filepath.Join(b.cfg.Dir, "cpu-"+name+".pprof"), "")
		}()
	}
	wg.Wait()
}

func (b *benchEnv) allocProfiles() {
	for _, name := range profiled {
		b.fetchProfile(fmt.Sprintf("http://%s/debug/pprof/allocs", b.services[name].addr), filepath.Join(b.cfg.Dir, "allocs-"+name+".pprof"), "-sample_index=alloc_space")
	}
}

func (b *benchEnv) fetchProfile(url, path, topFlag string) {
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Get(url)
	if err != nil {
		b.t.Logf("profile %s: %v", url, err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		b.t.Logf("profile %s: HTTP %d %s", url, resp.StatusCode, body)
		return
	}
	f, err := os.Create(path)
	if err != nil {
		b.t.Logf("profile: %v", err)
		return
	}
	_, err = io.Copy(f, resp.Body)
	f.Close()
	if err != nil {
		b.t.Logf("profile %s: %v", url, err)
		return
	}
	args := []string{"tool", "pprof", "-top", "-nodecount=25"}
	if topFlag != "" {
		args = append(args, topFlag)
	}
	for _, view := range []struct{ suffix, flag string }{{".top.txt", "-flat"}, {".cum.txt", "-cum"}} {
		out, err := exec.Command("go", append(append(args, view.flag), path)...).CombinedOutput()
		if err != nil {
			b.t.Logf("go tool pprof %s: %v", path, err)
		}
		_ = os.WriteFile(strings.TrimSuffix(path, ".pprof")+view.suffix, out, 0o644)
	}
}

// ingestAlone measures ingest without the rest of the pipeline: its durable
// accepts/s beside raw JetStream publishing with acks, and a burst of
// webhooks from many shops at once.
func (b *benchEnv) ingestAlone() {
	t, ctx := b.t, b.ctx
	for _, name := range []string{"mapper", "sage-writer", "statecallback"} {
		b.services[name].stop()
	}
	shops := b.cfg.IngestShop
	per := (b.cfg.IngestWebhooks + shops - 1) / shops
	const sustainedPer = 50
	admin, closeAdmin, err := b.st.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer closeAdmin()
	type loadShop struct {
		s    *benchShop
		rows []magentosim.OutboxRow
	}
	var load []loadShop
	for i := range shops {
		tenant := fmt.Sprintf("load-%03d", i+1)
		s, err := newBenchShop(tenant, &b.tr, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		if _, err := admin.CreateTenant(ctx, &ledgerv1.CreateTenantRequest{TenantId: tenant, Name: "Load " + tenant}); err != nil {
			t.Fatalf("create tenant %s: %v", tenant, err)
		}
		if _, err := admin.ConnectMagento(ctx, &ledgerv1.ConnectMagentoRequest{TenantId: tenant, ShopUrl: s.url, PairingCode: s.shop.GeneratePairingCode()}); err != nil {
			t.Fatalf("pair %s: %v", tenant, err)
		}
		s.shop.Seed(b.rng, magentosim.Options{Customers: per + sustainedPer})
		rows := s.shop.Outbox()
		slices.SortFunc(rows, func(a, b magentosim.OutboxRow) int { return int(a.EntityID - b.EntityID) })
		load = append(load, loadShop{s, rows})
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 2000, MaxIdleConns: 2000}}
	type job struct {
		s   *benchShop
		row magentosim.OutboxRow
	}
	post := func(j job) (int, bool) {
		key, _ := j.s.apiKey.Load().(string)
		tok, err := magento.MintOutbound(key, j.s.tenant, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.st.IngestURL+"/webhooks/magento/"+j.s.tenant+"/"+j.row.EventName, strings.NewReader(j.row.Payload))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", j.row.IdempotencyKey)
		resp, err := client.Do(req)
		if err != nil {
			return 0, false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After") != ""
	}
	type tally struct {
		mu                                     sync.Mutex
		ok, retry503, bare503, other5xx, other int
		otherCodes                             map[int]int
	}
	count := func(tl *tally, code int, retry bool) {
		tl.mu.Lock()
		defer tl.mu.Unlock()
		switch {
		case code/100 == 2:
			tl.ok++
		case code == http.StatusServiceUnavailable && retry:
			tl.retry503++
		case code == http.StatusServiceUnavailable:
			tl.bare503++
		case code/100 == 5:
			tl.other5xx++
		default:
			tl.other++
		}
		if code/100 != 2 {
			if tl.otherCodes == nil {
				tl.otherCodes = map[int]int{}
			}
			tl.otherCodes[code]++
		}
	}
	ingestPID := b.services["ingest"].pid()

	// 1. Sustained: 32 senders, round robin over the shops.
	const workers = 32
	var jobs []job
	for k := range sustainedPer {
		for _, l := range load {
			jobs = append(jobs, job{l.s, l.rows[per+k]})
		}
	}
	rawTook, err := runPublish(ctx, b.natsURL, len(jobs), 1024, workers)
	if err != nil {
		t.Fatalf("raw publish: %v", err)
	}
	rawRate := float64(len(jobs)) / rawTook.Seconds()
	ch := make(chan job, len(jobs))
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	var sus tally
	cpu0, _, _, _ := procTimes(ingestPID)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				code, retry := post(j)
				count(&sus, code, retry)
			}
		}()
	}
	wg.Wait()
	susTook := time.Since(start)
	cpu1, _, _, _ := procTimes(ingestPID)
	accRate := float64(sus.ok) / susTook.Seconds()
	b.printf("== ingest on its own (sync_interval always; mapper, sage-writer and statecallback stopped)\n")
	b.printf("raw JetStream publish with acks (%d publishers, each waiting for its ack, 1 KB): %d in %.1f s = %.0f msgs/s\n", workers, len(jobs), rawTook.Seconds(), rawRate)
	b.printf("ingest durable accepts (%d senders over %d shops): %d of %d webhooks 2xx in %.1f s = %.0f accepts/s, %.3f of raw publish; ingest CPU %.2f ms/accept; non-2xx %v\n",
		workers, shops, sus.ok, len(jobs), susTook.Seconds(), accRate, accRate/rawRate, ms(cpu1-cpu0)/float64(max(sus.ok, 1)), sus.otherCodes)

	// 2. Burst: every shop sends its webhooks at once, 10 at a time each.
	resetPeakRSS(ingestPID)
	const perShopConc = 10
	var burst tally
	gate := make(chan struct{})
	for _, l := range load {
		rows := l.rows[:per]
		for c := range perShopConc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				for i := c; i < len(rows); i += perShopConc {
					code, retry := post(job{l.s, rows[i]})
					count(&burst, code, retry)
				}
			}()
		}
	}
	start = time.Now()
	close(gate)
	wg.Wait()
	burstTook := time.Since(start)
	b.printf("burst: %d webhooks from %d shops at once (%d concurrent per shop, %d in all, no retries) in %.1f s: %d 2xx, %d 503 with Retry-After, %d 503 without, %d other 5xx, %d other (%v); ingest peak RSS %.0f MB\n\n",
		per*shops, shops, perShopConc, perShopConc*shops, burstTook.Seconds(), burst.ok, burst.retry503, burst.bare503, burst.other5xx, burst.other,
		burst.otherCodes, float64(procStatusKB(ingestPID, "VmHWM"))/1024)
	if burst.other5xx > 0 || burst.bare503 > 0 {
		t.Errorf("ingest answered a 5xx other than 503-with-Retry-After under the burst: %v", burst.otherCodes)
	}
}

// fsyncLatency writes 4 KB and fsyncs it n times in dir: what one
// sync_interval always write costs on this disk now.
func fsyncLatency(t *testing.T, dir string, n int) (p50, p99 time.Duration) {
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	d := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	return quantile(d, 0.5), quantile(d, 0.99)
}

// backlog stops the consumers (mapper, sage-writer, statecallback), lets the
// shops deliver n events into OUTBOX, starts the consumers again and samples
// their resident sets and the drain rate until every event has its result and
// callback: memory must stay flat and the rate must not fall as the backlog
// is worked off.
func (b *benchEnv) backlog(n int) {
	t := b.t
	consumers := []string{"mapper", "sage-writer", "statecallback"}
	for _, name := range consumers {
		b.services[name].stop()
	}
	tr := newTracker()
	b.tr.Store(tr)
	defer b.tr.Store(nil)
	fillStart := time.Now()
	saved := b.cfg.Events
	b.cfg.Events = n
	expected := b.burstFeed()
	b.cfg.Events = saved
	devtest.Eventually(b.t, "the backlog in OUTBOX", func() bool { a, _, _ := tr.progress(); return a >= expected }, devtest.Within(30*time.Minute))
	fill := time.Since(fillStart)
	for _, name := range consumers {
		if err := b.services[name].start(); err != nil {
			t.Fatal(err)
		}
	}
	drainStart := time.Now()
	type sample struct {
		at    time.Duration
		done  int
		rssMB map[string]float64
	}
	var samples []sample
	peak := map[string]float64{}
	lastMove, last := time.Now(), -1
	for {
		_, res, syn := tr.progress()
		sm := sample{at: time.Since(drainStart), done: res, rssMB: map[string]float64{}}
		for _, name := range consumers {
			mb := float64(procStatusKB(b.services[name].pid(), "VmRSS")) / 1024
			sm.rssMB[name] = mb
			peak[name] = max(peak[name], mb)
		}
		samples = append(samples, sm)
		if res >= expected && syn >= res {
			break
		}
		if res+syn != last {
			last, lastMove = res+syn, time.Now()
		} else if res >= expected && time.Since(lastMove) > 15*time.Second {
			break // every result is in; callbacks no longer move
		} else if time.Since(lastMove) > 2*time.Minute {
			t.Errorf("backlog drain stalled at %d of %d results", res, expected)
			break
		}
		time.Sleep(time.Second) // the sampling interval of the drain's progress
	}
	tm := tr.times()
	drain := maxTime(tm.LastResult, tm.LastSync).Sub(drainStart)
	b.printf("== backlog: %d events left in OUTBOX while mapper, sage-writer and statecallback were down (filled through ingest in %.1f s), then drained in %.1f s (consumers' start to the last result or callback) = %.1f events/s; %d without a callback of their own (%d superseded by a newer result of the row)\n",
		expected, fill.Seconds(), drain.Seconds(), float64(expected)/drain.Seconds(), tm.MissingSync+tm.Superseded, tm.Superseded)
	// The drain rate and resident sets per fifth of the backlog.
	var parts []string
	prev := sample{}
	for q := 1; q <= 5; q++ {
		target := expected * q / 5
		i := slices.IndexFunc(samples, func(s sample) bool { return s.done >= target })
		if i < 0 {
			break
		}
		s := samples[i]
		rate := float64(s.done-prev.done) / max((s.at-prev.at).Seconds(), 0.001)
		parts = append(parts, fmt.Sprintf("fifth %d: %.1f events/s, RSS MB mapper %.0f sage-writer %.0f statecallback %.0f", q, rate,
			s.rssMB["mapper"], s.rssMB["sage-writer"], s.rssMB["statecallback"]))
		prev = s
	}
	b.printf("  %s\n", strings.Join(parts, "\n  "))
	b.printf("  peak RSS MB during the drain: mapper %.0f, sage-writer %.0f, statecallback %.0f (goal ≤ 150 each)\n\n", peak["mapper"], peak["sage-writer"], peak["statecallback"])
	for _, name := range consumers {
		devtest.Eventually(b.t, name+" ready", b.services[name].ready, devtest.Within(2*time.Minute))
	}
}
