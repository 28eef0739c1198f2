package process_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ledgersync/ledger/libs/devstack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/process"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/telemetry"
)

func TestMain(m *testing.M) { devtest.Main(m) }

func testSettings(dbURL, natsURL string) process.Settings {
	_, key := secrets.NewRandomKeyRing()
	return process.Settings{DatabaseURL: dbURL, NATSURL: natsURL, SecretKey: key, NATSReplicas: 1, Env: "dev"}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually polls cond until it holds or the test's deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proxy forwards connections on a port reserved now, once open is called, to
// target: a database that "arrives" later at a known address.
type proxy struct {
	port   int
	target string
	ln     net.Listener
}

func (p *proxy) open(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p.port))
	if err != nil {
		t.Fatal(err)
	}
	p.ln = ln
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", p.target)
				if err != nil {
					return
				}
				defer u.Close()
				var wg sync.WaitGroup
				wg.Go(func() { _, _ = io.Copy(u, c); u.(*net.TCPConn).CloseWrite() })
				_, _ = io.Copy(c, u)
				wg.Wait()
			}()
		}
	}()
}

// TestStartsBeforeItsDependencies: a service started while neither Postgres
// nor NATS answers serves /healthz, reports not-ready with the reason on
// /readyz, and becomes ready by itself once both arrive.
func TestStartsBeforeItsDependencies(t *testing.T) {
	t.Parallel()
	db := devtest.Database(t)
	dbHost := db[strings.Index(db, "@")+1:]
	dbHost = dbHost[:strings.Index(dbHost, "/")]
	pg := &proxy{port: freePort(t), target: dbHost}
	natsPort := freePort(t)
	s := testSettings(strings.Replace(db, dbHost, "127.0.0.1:"+strconv.Itoa(pg.port), 1), "nats://127.0.0.1:"+strconv.Itoa(natsPort))

	var ran sync.WaitGroup
	ran.Add(1)
	prog := process.Program{Name: "probe", Addr: "127.0.0.1:0", AddrVar: "PROBE_ADDR",
		Start: func(_ context.Context, in *process.Infra) (process.Started, error) {
			return process.Started{Components: []process.Component{{Name: "worker", Run: func(ctx context.Context) error {
				ran.Done()
				<-ctx.Done()
				return nil
			}}}}, nil
		}}
	ctx, cancel := context.WithCancel(t.Context())
	r, err := process.Start(ctx, telemetry.Discard(), s, prog)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, r.URL()+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d while waiting for dependencies", code)
	}
	eventually(t, "/readyz naming the database", func() bool {
		code, body := get(t, r.URL()+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "LEDGER_DATABASE_URL")
	})

	pg.open(t) // Postgres arrives; NATS is still missing.
	eventually(t, "/readyz naming NATS", func() bool {
		code, body := get(t, r.URL()+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "LEDGER_NATS_URL")
	})
	ns, err := devstack.StartNATS(t.TempDir(), devstack.WithNATSPort(natsPort))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })

	if err := r.Built(t.Context()); err != nil {
		t.Fatal(err)
	}
	ran.Wait()
	eventually(t, "/readyz ready", func() bool {
		code, _ := get(t, r.URL()+"/readyz")
		return code == http.StatusOK
	})
	cancel()
	if err := r.Wait(); err != nil {
		t.Fatalf("clean shutdown returned %v", err)
	}
}

// TestRefusesNATSWithoutJetStream: a server without JetStream stops the
// service at once with a message saying what to fix, instead of waiting.
func TestRefusesNATSWithoutJetStream(t *testing.T) {
	t.Parallel()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(ns.Shutdown)
	prog := process.Program{Name: "probe", Addr: "127.0.0.1:0", AddrVar: "PROBE_ADDR",
		Start: func(context.Context, *process.Infra) (process.Started, error) { return process.Started{}, nil }}
	err = process.Run(t.Context(), telemetry.Discard(), testSettings(devtest.Database(t), ns.ClientURL()), prog)
	if err == nil || !strings.Contains(err.Error(), "no JetStream") || !strings.Contains(err.Error(), "-js") {
		t.Fatalf("want a clear JetStream error, got %v", err)
	}
}

func TestRunReportsAFailingComponentAndABadAddress(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	prog := process.Program{Name: "probe", Addr: "127.0.0.1:0", AddrVar: "PROBE_ADDR",
		Start: func(context.Context, *process.Infra) (process.Started, error) {
			return process.Started{Components: []process.Component{{Name: "worker", Run: func(context.Context) error { return boom }}}}, nil
		}}
	s := testSettings(devtest.Database(t), devtest.NATS(t))
	if err := process.Run(t.Context(), telemetry.Discard(), s, prog); !errors.Is(err, boom) {
		t.Fatalf("want the component's error, got %v", err)
	}
	prog.Addr = "256.0.0.1:99999"
	if err := process.Run(t.Context(), telemetry.Discard(), s, prog); err == nil || !strings.Contains(err.Error(), "PROBE_ADDR") {
		t.Fatalf("a bad address must name its setting: %v", err)
	}
}
