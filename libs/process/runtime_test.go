package process_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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

func gate(t *testing.T, target string) *devstack.Gate {
	t.Helper()
	g, err := devstack.NewGate(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// TestStartsBeforeItsDependencies: a service started while neither Postgres
// nor NATS answers serves /healthz, reports not-ready with the reason on
// /readyz, and becomes ready by itself once both arrive.
func TestStartsBeforeItsDependencies(t *testing.T) {
	t.Parallel()
	db, err := url.Parse(devtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	pg := gate(t, db.Host)
	db.Host = pg.Addr
	ns := devtest.NATSServer(t)
	nats := gate(t, strings.TrimPrefix(ns.ClientURL(), "nats://"))
	s := testSettings(db.String(), "nats://"+nats.Addr)

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
	devtest.Eventually(t, "/readyz naming the database", func() bool {
		code, body := get(t, r.URL()+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "LEDGER_DATABASE_URL")
	})

	if err := pg.Open(); err != nil { // Postgres arrives; NATS is still missing.
		t.Fatal(err)
	}
	devtest.Eventually(t, "/readyz naming NATS", func() bool {
		code, body := get(t, r.URL()+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "LEDGER_NATS_URL")
	})
	if err := nats.Open(); err != nil {
		t.Fatal(err)
	}

	if err := r.Built(t.Context()); err != nil {
		t.Fatal(err)
	}
	ran.Wait()
	devtest.Eventually(t, "/readyz ready", func() bool {
		code, _ := get(t, r.URL()+"/readyz")
		return code == http.StatusOK
	})

	// NATS goes away and comes back: readiness follows, the service stays up.
	ns = devtest.RestartNATS(t, ns, func() {
		devtest.Eventually(t, "/readyz naming NATS while it is down", func() bool {
			code, body := get(t, r.URL()+"/readyz")
			return code == http.StatusServiceUnavailable && strings.Contains(body, "nats:")
		})
	})
	devtest.Eventually(t, "/readyz ready again", func() bool {
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

// fakeNATS is a server that speaks just enough of the NATS protocol for a
// client to connect, announcing version.
func fakeNATS(t *testing.T, version string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "INFO {\"server_id\":\"fake\",\"version\":%q,\"go\":\"go1\",\"host\":\"127.0.0.1\",\"port\":4222,\"headers\":true,\"max_payload\":1048576,\"proto\":1}\r\n", version)
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if strings.HasPrefix(sc.Text(), "PING") {
						fmt.Fprint(c, "PONG\r\n")
					}
				}
			}()
		}
	}()
	return "nats://" + ln.Addr().String()
}

// TestRefusesATooOldNATSServer: a server older than Ledger needs stops the
// service at once, naming the version found and the one required.
func TestRefusesATooOldNATSServer(t *testing.T) {
	t.Parallel()
	prog := process.Program{Name: "probe", Addr: "127.0.0.1:0", AddrVar: "PROBE_ADDR",
		Start: func(context.Context, *process.Infra) (process.Started, error) { return process.Started{}, nil }}
	err := process.Run(t.Context(), telemetry.Discard(), testSettings(devtest.Database(t), fakeNATS(t, "2.9.25")), prog)
	if err == nil || !strings.Contains(err.Error(), "2.9.25") || !strings.Contains(err.Error(), process.MinNATSVersion) {
		t.Fatalf("want an error naming 2.9.25 and %s, got %v", process.MinNATSVersion, err)
	}
}
