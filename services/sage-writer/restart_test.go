package sagewriter_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// writeLog records when Sage created each business's sales invoices, from the
// simulator's side of the wire.
type writeLog struct {
	mu   sync.Mutex
	at   map[string][]time.Time // business → creation times
	hold chan struct{}          // set: holdNextInvoice is armed
}

// observe wraps the simulator's handler and records every successful invoice
// POST under its X-Business header.
func (l *writeLog) observe(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if held := l.takeHold(r); held != nil {
			close(held)
			// Read to the end: only then does the server notice the
			// connection closing and end the request's context.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done() // until the client's connection dies
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/sales_invoices") && rec.status/100 == 2 {
			l.mu.Lock()
			if l.at == nil {
				l.at = map[string][]time.Time{}
			}
			l.at[r.Header.Get("X-Business")] = append(l.at[r.Header.Get("X-Business")], time.Now())
			l.mu.Unlock()
		}
	})
}

// holdNextInvoice makes the next invoice POST wait at the simulator's door,
// never reaching Sage, until its client's connection dies. The returned
// channel is closed once a write is held so: its writer is then certainly in
// the middle of a write.
func (l *writeLog) holdNextInvoice() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hold = make(chan struct{})
	return l.hold
}

func (l *writeLog) takeHold(r *http.Request) chan struct{} {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/sales_invoices") {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	held := l.hold
	l.hold = nil
	return held
}

// longestGap is the longest time business went without a new invoice between
// from and to (counting from from and up to to).
func (l *writeLog) longestGap(business string, from, to time.Time) time.Duration {
	l.mu.Lock()
	times := slices.Clone(l.at[business])
	l.mu.Unlock()
	prev, gap := from, time.Duration(0)
	for _, t := range times {
		if t.Before(from) || t.After(to) {
			continue
		}
		gap = max(gap, t.Sub(prev))
		prev = t
	}
	return max(gap, to.Sub(prev))
}

// wroteSince reports whether Sage created an invoice for business after since.
func (l *writeLog) wroteSince(business string, since time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	times := l.at[business]
	return len(times) > 0 && times[len(times)-1].After(since)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// load publishes invoice writes for every tenant at a steady pace until stop
// is called.
type load struct {
	f       *fleet
	stopped chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	runs    []string // published: JetStream acknowledged them
	unsure  []string // still being sent when the load stopped: stored or not
	next    atomic.Int64
}

func (f *fleet) steadyLoad(tenants []string, perTenantEvery time.Duration) *load {
	l := &load{f: f, stopped: make(chan struct{})}
	for _, tenant := range tenants {
		l.wg.Go(func() {
			t := time.NewTicker(perTenantEvery)
			defer t.Stop()
			// A publish that fails (NATS restarting) may still have been
			// stored: the same write is sent again at the next tick with the
			// same Nats-Msg-Id, which JetStream stores once, as a real
			// publisher does.
			var run string
			var w *ledgerv1.SageWrite
			for {
				select {
				case <-l.stopped:
					if run != "" {
						l.mu.Lock()
						l.unsure = append(l.unsure, run)
						l.mu.Unlock()
					}
					return
				case <-t.C:
				}
				if run == "" {
					run = f.newRuns(tenant, "invoice.created", 1)[0]
					n := int(l.next.Add(1))
					w = f.invoiceWrite(tenant, run, n, n%7)
				}
				if publishQuietly(f, w, run) != nil {
					continue
				}
				l.mu.Lock()
				l.runs = append(l.runs, run)
				l.mu.Unlock()
				run = ""
			}
		})
	}
	return l
}

// publishQuietly publishes w with msgID, reporting failure (NATS
// restarting) instead of failing the test.
func publishQuietly(f *fleet, w *ledgerv1.SageWrite, msgID string) error {
	ctx, cancel := context.WithTimeout(f.tb.Context(), 5*time.Second)
	defer cancel()
	_, err := bus.Publish(ctx, f.js, bus.SageSubject(w.TenantId, w.EntityType), w, msgID)
	return err
}

// stop ends the load and returns the runs JetStream acknowledged and those
// still being sent, which may or may not have been stored.
func (l *load) stop() (runs, unsure []string) {
	close(l.stopped)
	l.wg.Wait()
	return l.runs, l.unsure
}

// writerProcess is cmd/sage-writer running as its own process.
type writerProcess struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{} // closed once the process has exited; err says how
	err    error
}

func buildWriterBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sage-writer")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/ledgersync/ledger/services/sage-writer/cmd/sage-writer").CombinedOutput()
	if err != nil {
		t.Fatalf("building sage-writer: %v\n%s", err, out)
	}
	return bin
}

func (f *fleet) startWriterProcess(t *testing.T, bin, name string) *writerProcess {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"LEDGER_ENV=dev", "LEDGER_DATABASE_URL="+f.dbURL, "LEDGER_NATS_URL="+f.ns.ClientURL(), "LEDGER_SECRET_KEY="+f.key,
		"SAGE_API_URL="+f.oauth.Endpoints.APIURL, "SAGE_AUTH_URL="+f.oauth.Endpoints.AuthURL,
		"SAGE_TOKEN_URL="+f.oauth.Endpoints.TokenURL, "SAGE_REVOKE_URL="+f.oauth.Endpoints.RevokeURL,
		"SAGE_CLIENT_ID="+sagesim.DefaultClientID, "SAGE_CLIENT_SECRET="+sagesim.DefaultClientSecret,
		"WRITER_ADDR=127.0.0.1:0", "WRITER_TENANT_SCAN=200ms", "SAGE_BUSINESS_RATE_PER_MINUTE=60000", "SAGE_BUSINESS_BURST=50",
		"WRITER_RETRY_BASE=50ms", "WRITER_RETRY_CAP=1s")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &writerProcess{cmd: cmd, log: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("---- %s log (tail) ----\n%s", name, b)
		}
	})
	return p
}

// consuming waits until the process logged that it consumes.
func (p *writerProcess) consuming(t *testing.T) {
	t.Helper()
	devtest.Eventually(t, "the writer process consuming", func() bool {
		f, err := os.Open(p.log)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "sage-writer consuming") {
				return true
			}
		}
		return false
	})
}

// TestNoStallAfterCrashRestartOrDeploy is issue 16's acceptance test. Four
// tenants send a steady stream of invoices through cmd/sage-writer running as
// its own process; the longest time any tenant goes without a new invoice in
// Sage is measured around each disruption:
//
//   - the writer is SIGKILLed and started again at once: the write the dead
//     process held comes back after the short ack wait, not a long one
//     (≤ 10 s);
//   - the NATS server restarts (same store): consumers fetch again as soon as
//     the connection is back (≤ 10 s);
//   - with two writers running, one gets SIGTERM (a rolling deploy): it hands
//     back what it held and the other takes over (≤ 5 s), and it exits cleanly.
//
// Afterwards every run is terminal and Sage has exactly one invoice per run.
func TestNoStallAfterCrashRestartOrDeploy(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process restart test")
	}
	t.Parallel()
	bin := buildWriterBinary(t)
	f := newFleet(t, sagesim.Config{})
	tenants := f.addTenants("steady", 4)
	businesses := make([]string, len(tenants))
	for i, tn := range tenants {
		businesses[i] = f.businessOf(tn)
	}
	measure := func(what string, from, to time.Time, limit time.Duration) {
		t.Helper()
		var gaps []string
		for i, b := range businesses {
			g := f.writes.longestGap(b, from, to)
			gaps = append(gaps, fmt.Sprintf("%s %s", tenants[i], g.Round(10*time.Millisecond)))
			if g > limit {
				t.Errorf("%s: %s went %s without a Sage write (limit %s)", what, tenants[i], g.Round(10*time.Millisecond), limit)
			}
		}
		t.Logf("%s: longest gap per tenant: %s", what, strings.Join(gaps, ", "))
	}
	// flowing waits until every tenant has had an invoice written since
	// since: after a disruption, until the last stalled tenant writes again.
	flowing := func(since time.Time) {
		t.Helper()
		devtest.Eventually(t, "every tenant writing", func() bool {
			for _, b := range businesses {
				if !f.writes.wroteSince(b, since) {
					return false
				}
			}
			return true
		})
	}

	w := f.startWriterProcess(t, bin, "writer-1")
	w.consuming(t)
	ld := f.steadyLoad(tenants, 100*time.Millisecond)
	flowing(time.Now())

	// Each disruption is measured from a moment every tenant is writing until
	// every tenant writes again: the longest gap in between is the stall.

	// 1. SIGKILL, restart at once, while the writer is in the middle of a
	// write (held at Sage's door).
	from := time.Now()
	flowing(from)
	held := f.writes.holdNextInvoice()
	devtest.Eventually(t, "a write in flight", func() bool {
		select {
		case <-held:
			return true
		default:
			return false
		}
	})
	if err := w.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-w.exited
	w = f.startWriterProcess(t, bin, "writer-2")
	w.consuming(t)
	flowing(time.Now())
	measure("writer SIGKILLed and restarted", from, time.Now(), 10*time.Second)

	// 2. NATS restarts.
	from = time.Now()
	flowing(from)
	f.ns = devtest.RestartNATS(t, f.ns)
	flowing(time.Now())
	measure("NATS restarted", from, time.Now(), 10*time.Second)

	// 3. A second writer joins; the first gets SIGTERM (a rolling deploy).
	w2 := f.startWriterProcess(t, bin, "writer-3")
	w2.consuming(t)
	flowing(time.Now())
	from = time.Now()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.exited:
		if w.err != nil {
			t.Errorf("the writer did not exit cleanly on SIGTERM: %v", w.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the writer did not exit within 30 s of SIGTERM")
	}
	t.Logf("SIGTERM to exit: %s", time.Since(from).Round(10*time.Millisecond))
	flowing(time.Now())
	measure("one of two writers SIGTERMed", from, time.Now(), 5*time.Second)

	runs, unsure := ld.stop()
	f.waitTerminal(runs)
	total := 0
	for _, b := range businesses {
		seen := map[string]bool{}
		for _, inv := range f.sim.Invoices(b) {
			if seen[inv.Reference] {
				t.Errorf("business %s: invoice %s twice in Sage", b, inv.Reference)
			}
			seen[inv.Reference] = true
		}
		total += len(seen)
	}
	// Every acknowledged run once; a run still being sent at the stop, at
	// most once (each has its own invoice reference, and Sage holds no
	// reference twice: checked below).
	if total < len(runs) || total > len(runs)+len(unsure) {
		t.Errorf("Sage has %d invoices for %d acknowledged runs and %d still being sent", total, len(runs), len(unsure))
	}
	if n := f.deadLetters(); n != 0 {
		t.Errorf("%d dead letters", n)
	}
	t.Logf("%d invoices for %d tenants, each once", total, len(tenants))
}
