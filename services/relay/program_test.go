package relay_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/process"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/services/relay"
)

// The relay as its binary runs it: it stops at start on a database without
// the outbox table, naming the table, and never logs its secrets.
func TestProgramStopsOnAMissingTableAndKeepsSecretsOutOfLogs(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	cfg := relay.Config{Addr: "127.0.0.1:0", MySQLDSN: secrets.String(devtest.MariaDB(t)), TenantID: "t1",
		APIKey: "byte8_lk_secret_never_logged", NATSURL: secrets.String(devtest.NATS(t))}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	r, err := process.Start(ctx, log, process.Settings{}, relay.Program(cfg))
	if err != nil {
		t.Fatal(err)
	}
	err = r.Wait()
	if err == nil || !strings.Contains(err.Error(), "byte8_event_outbox does not exist") {
		t.Fatalf("started without the outbox table: %v", err)
	}
	if strings.Contains(logs.String(), "byte8_lk_secret_never_logged") {
		t.Fatalf("the api key is in the logs:\n%s", logs.String())
	}
}

func TestProgramServesHealthReadinessAndMetrics(t *testing.T) {
	t.Parallel()
	url := devtest.NATS(t)
	// Ledger's services create the streams; the relay only uses them.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := bus.EnsureStreams(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	cfg := relay.Config{Addr: "127.0.0.1:0", MySQLDSN: secrets.String(devtest.ShopDatabase(t)), TenantID: "t1",
		APIKey: "byte8_lk_secret", NATSURL: secrets.String(url)}
	ctx, cancel := context.WithCancel(t.Context())
	r, err := process.Start(ctx, slog.New(slog.DiscardHandler), process.Settings{}, relay.Program(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = r.Wait() }()
	get := func(path string) int {
		res, err := http.Get(r.URL() + path)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	devtest.Eventually(t, "the relay ready", func() bool { return get("/readyz") == http.StatusOK })
	if c := get("/healthz"); c != http.StatusOK {
		t.Fatalf("/healthz %d", c)
	}
	if c := get("/metrics"); c != http.StatusOK {
		t.Fatalf("/metrics %d", c)
	}
}
