package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	magentosim "github.com/ledgersync/ledger/sim/magento"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// chaosService is one service binary the chaos test runs, kills and restarts.
type chaosService struct {
	name, pkg, addrVar string
	env                []string
	bin, log           string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (c *chaosService) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(c.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.bin)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	c.mu.Lock()
	c.cmd, c.done = cmd, done
	c.mu.Unlock()
}

func (c *chaosService) kill() {
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		<-done
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func readyAt(url string) bool {
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestChaos is `make chaos` (it runs only when LEDGER_CHAOS is set): every
// service runs as its own process, N events (LEDGER_CHAOS_EVENTS, default
// 5,000) flow from the shop to Sage with Sage answering 5 % 500s and dropping
// 5 % of its writes' answers after committing them, and a random service is
// SIGKILLed and restarted every couple of seconds — the NATS server too, now
// and then — until everything has settled. It prints one line a script can
// read: `chaos: events=N kills=K nats_restarts=R lost=L duplicates=D`.
func TestChaos(t *testing.T) {
	if os.Getenv("LEDGER_CHAOS") == "" {
		t.Skip("make chaos runs this (LEDGER_CHAOS=1)")
	}
	events := 5000
	if v := os.Getenv("LEDGER_CHAOS_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("LEDGER_CHAOS_EVENTS=%q: use a whole number of at least 10", v)
		}
		events = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	dir := t.TempDir()
	logFile, err := os.Create(filepath.Join(dir, "stack.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer dumpOnFailure(t, "stack log", logFile.Name())
	log := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))

	ns := devtest.NATSServer(t)
	st, err := stack.Start(ctx, stack.Options{StateDir: dir, Log: log, External: true, NATSURL: ns.ClientURL(),
		ShopDrainInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	defer st.Close()

	addr := map[string]string{}
	for _, k := range []string{"ingest", "mapper", "sage-writer", "statecallback", "admin", "admin-grpc"} {
		addr[k] = freeAddr(t)
	}
	st.IngestURL, st.AdminHTTPURL, st.AdminGRPCAddr = "http://"+addr["ingest"], "http://"+addr["admin"], addr["admin-grpc"]
	services := []*chaosService{
		{name: "ingest", pkg: "services/ingest/cmd/ingest", addrVar: "INGEST_ADDR"},
		{name: "mapper", pkg: "services/mapper/cmd/mapper", addrVar: "MAPPER_ADDR"},
		{name: "sage-writer", pkg: "services/sage-writer/cmd/sage-writer", addrVar: "WRITER_ADDR"},
		{name: "statecallback", pkg: "services/statecallback/cmd/statecallback", addrVar: "STATECALLBACK_ADDR"},
		{name: "admin", pkg: "services/admin/cmd/admin", addrVar: "ADMIN_HTTP_ADDR",
			env: []string{"ADMIN_GRPC_ADDR=" + addr["admin-grpc"], "ADMIN_PUBLIC_URL=" + st.AdminHTTPURL}},
	}
	for _, s := range services {
		s.bin = filepath.Join(dir, s.name)
		if out, err := exec.Command("go", "build", "-o", s.bin, "github.com/ledgersync/ledger/"+s.pkg).CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", s.name, err, out)
		}
		s.log = filepath.Join(dir, s.name+".log")
		s.env = append(append(st.ServiceEnv(s.name), s.addrVar+"="+addr[s.name]), s.env...)
		s.start(t)
		defer s.kill()
		defer dumpOnFailure(t, s.name+" log", s.log)
	}
	for _, s := range services {
		devtest.Eventually(t, s.name+" ready", func() bool { return readyAt("http://" + addr[s.name]) })
	}
	if err := st.Onboard(ctx, "chaos", "Chaos shop"); err != nil {
		t.Fatal(err)
	}
	if err := st.Sage.SetFaults(sagesim.Faults{ServerErrorRate: 0.05, CommitThenDropRate: 0.05}); err != nil {
		t.Fatal(err)
	}
	customers := max(events/10, 1)
	seed := st.Shop.Seed(rand.New(rand.NewPCG(40, 2)), magentosim.Options{Customers: customers, Invoices: events - customers, GuestShare: 0.2})
	expected := stack.ExpectSeed(seed)
	began := time.Now()

	// Kill something every 2-4 s until everything has settled.
	settled := make(chan stack.Summary, 1)
	go func() { settled <- st.WaitSettled(ctx, expected) }()
	rng := rand.New(rand.NewPCG(40, 3))
	kills, natsRestarts := 0, 0
	var sum stack.Summary
chaos:
	for {
		select {
		case sum = <-settled:
			break chaos
		case <-time.After(time.Duration(2000+rng.IntN(2000)) * time.Millisecond):
		}
		if rng.IntN(10) == 0 {
			ns = devtest.RestartNATS(t, ns)
			natsRestarts++
			continue
		}
		s := services[rng.IntN(len(services))]
		s.kill()
		time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond) // the service stays down a while: the downtime is the chaos
		s.start(t)
		kills++
	}
	took := time.Since(began)
	lost := len(expected) - sum.Synced - sum.Skipped - sum.Failed
	t.Logf("%d events in %s with %d SIGKILLs and %d NATS restarts: %s", len(expected), took.Round(time.Second), kills, natsRestarts, sum)
	fmt.Printf("chaos: events=%d kills=%d nats_restarts=%d lost=%d duplicates=%d seconds=%d\n",
		len(expected), kills, natsRestarts, lost, sum.Duplicates, int(took.Seconds()))
	if !sum.OK() || sum.Synced != len(expected) {
		t.Fatalf("not every event arrived once: %+v (%s)", sum, strings.TrimSpace(sum.String()))
	}
}
