package relay_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/telemetry"
	"github.com/ledgersync/ledger/services/relay"
)

func TestMain(m *testing.M) { devtest.Main(m) }

const (
	tenant = "t1"
	apiKey = "byte8_lk_relay_test_key"
)

type fixture struct {
	db  *sql.DB
	nc  *nats.Conn
	js  jetstream.JetStream
	url string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := sql.Open("mysql", devtest.ShopDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	url := devtest.NATS(t)
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectBufSize(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, nc: nc, js: js, url: url}
}

func (f *fixture) relay(t *testing.T, nc *nats.Conn) *relay.Relay {
	t.Helper()
	r, err := relay.New(relay.Config{MySQLDSN: "root@tcp(127.0.0.1:1)/x", TenantID: tenant, APIKey: secrets.String(apiKey)}, f.db, nc, telemetry.Discard())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// enqueue inserts a row as ByteClient::enqueueEvent does.
func (f *fixture) enqueue(t *testing.T, key, event, payload string) {
	t.Helper()
	if _, err := f.db.ExecContext(t.Context(), "INSERT INTO byte8_event_outbox (idempotency_key, event_name, payload, status, attempts, next_attempt_at, last_error) VALUES (?, ?, ?, 'pending', 0, NULL, '')", key, event, payload); err != nil {
		t.Fatal(err)
	}
}

type outboxRow struct {
	Status      string
	Attempts    int
	Code        sql.NullInt64
	LastAttempt sql.NullTime
	Next        sql.NullTime
	Error       sql.NullString
}

func (f *fixture) row(t *testing.T, key string) outboxRow {
	t.Helper()
	var r outboxRow
	if err := f.db.QueryRowContext(t.Context(), "SELECT status, attempts, last_status_code, last_attempt_at, next_attempt_at, last_error FROM byte8_event_outbox WHERE idempotency_key = ?", key).
		Scan(&r.Status, &r.Attempts, &r.Code, &r.LastAttempt, &r.Next, &r.Error); err != nil {
		t.Fatal(err)
	}
	return r
}

func envelope(id int) string {
	return fmt.Sprintf(`{"magento_entity_id":%d,"website_id":1,"store_id":1,"occurred_at":"2026-04-29T10:11:12Z","payload":{"increment_id":"%09d","paid":false}}`, id, id)
}

func TestRelayPublishesDueRowsAndMarksThemAsTheCronWould(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.relay(t, f.nc)
	f.enqueue(t, "invoice.created:1", "invoice.created", envelope(1))
	f.enqueue(t, "invoice.created:2", "invoice.created", envelope(2))
	f.enqueue(t, "bad:1", "invoice.created", `not json`)
	f.enqueue(t, "bad:2", "invoice.created", `{"website_id":1}`)
	// Not due yet, and not pending: left alone.
	f.enqueue(t, "later:1", "invoice.created", envelope(3))
	f.enqueue(t, "done:1", "invoice.created", envelope(4))
	if _, err := f.db.ExecContext(t.Context(), "UPDATE byte8_event_outbox SET next_attempt_at = UTC_TIMESTAMP() + INTERVAL 1 HOUR WHERE idempotency_key = 'later:1'"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.ExecContext(t.Context(), "UPDATE byte8_event_outbox SET status = 'dead_lettered' WHERE idempotency_key = 'done:1'"); err != nil {
		t.Fatal(err)
	}
	n, err := r.Drain(t.Context())
	if err != nil || n != 4 {
		t.Fatalf("Drain = %d, %v; want the 4 due pending rows", n, err)
	}
	for _, key := range []string{"invoice.created:1", "invoice.created:2"} {
		got := f.row(t, key)
		if got.Status != "succeeded" || got.Attempts != 1 || got.Code.Int64 != relay.StatusAccepted || !got.LastAttempt.Valid || got.Next.Valid || got.Error.Valid {
			t.Errorf("%s: %+v; want succeeded, 1 attempt, 202, last_attempt_at set, next_attempt_at and last_error NULL", key, got)
		}
	}
	for key, reason := range map[string]string{"bad:1": "not a JSON object", "bad:2": "no magento_entity_id"} {
		got := f.row(t, key)
		if got.Status != "dead_lettered" || got.Attempts != 1 || got.Code.Int64 != 400 || got.Next.Valid || !strings.HasPrefix(got.Error.String, "HTTP 400: ") || !strings.Contains(got.Error.String, reason) {
			t.Errorf("%s: %+v; want dead_lettered with 400 and %q", key, got, reason)
		}
	}
	if got := f.row(t, "later:1"); got.Status != "pending" || got.Attempts != 0 {
		t.Errorf("a row not due was touched: %+v", got)
	}
	// INGEST holds the two rows byte for byte, with the contract's headers.
	s, _ := f.js.Stream(t.Context(), bus.StreamIngest)
	for i, key := range []string{"invoice.created:1", "invoice.created:2"} {
		m, err := s.GetLastMsgForSubject(t.Context(), bus.IngestSubject(tenant, "invoice.created"))
		if i == 0 {
			m, err = s.GetMsg(t.Context(), 1)
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != envelope(i+1) || m.Header.Get(nats.MsgIdHdr) != tenant+":"+key || m.Header.Get("Idempotency-Key") != key {
			t.Fatalf("message %d: %q %v", i, m.Data, m.Header)
		}
		tok, err := magento.Parse(strings.TrimPrefix(m.Header.Get("Authorization"), "Bearer "))
		if err != nil || magento.VerifyOutbound(tok, apiKey, tenant, time.Now()) != nil {
			t.Fatalf("message %d: token %q does not verify: %v", i, m.Header.Get("Authorization"), err)
		}
	}
	if info, _ := s.Info(t.Context()); info.State.Msgs != 2 {
		t.Fatalf("INGEST holds %d messages, want 2", info.State.Msgs)
	}
}

func TestRelayBacksOffAsTheModuleWhenNATSIsDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// A connection that is closed: every publish fails at once.
	dead, err := nats.Connect(f.url)
	if err != nil {
		t.Fatal(err)
	}
	r := f.relay(t, dead)
	dead.Close()
	f.enqueue(t, "invoice.created:1", "invoice.created", envelope(1))
	if _, err := r.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := f.row(t, "invoice.created:1")
	if got.Status != "pending" || got.Attempts != 1 || got.Code.Valid || !got.Next.Valid || !strings.Contains(got.Error.String, "INGEST") {
		t.Fatalf("%+v; want pending, 1 attempt, code NULL, next_attempt_at set, the error", got)
	}
	if wait := got.Next.Time.Sub(got.LastAttempt.Time); wait != relay.Backoff[0] {
		t.Fatalf("next attempt %s after the last, want %s", wait, relay.Backoff[0])
	}
	// Not due: the next pass leaves it alone.
	if n, err := r.Drain(t.Context()); err != nil || n != 0 {
		t.Fatalf("Drain = %d, %v on a row in back-off", n, err)
	}
	// The 10th transient failure dead-letters it, as the module does.
	if _, err := f.db.ExecContext(t.Context(), "UPDATE byte8_event_outbox SET attempts = 9, next_attempt_at = NULL"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	got = f.row(t, "invoice.created:1")
	if got.Status != "dead_lettered" || got.Attempts != 10 || got.Code.Valid || !strings.HasPrefix(got.Error.String, "transient_exhausted: ") {
		t.Fatalf("%+v; want dead_lettered after 10 attempts with transient_exhausted", got)
	}
}

func TestTwoRelaysNeverPublishARowTwice(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const rows = 300
	for i := range rows {
		f.enqueue(t, fmt.Sprintf("customer.upserted:%d", i), "customer.upserted", envelope(i))
	}
	// Every publish, duplicates included (JetStream's dedupe would hide them).
	var mu sync.Mutex
	seen := map[string]int{}
	sub, err := f.nc.Subscribe(bus.IngestAll, func(m *nats.Msg) {
		mu.Lock()
		seen[m.Header.Get(nats.MsgIdHdr)]++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := f.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 2 {
		r := f.relay(t, f.nc)
		wg.Go(func() { _ = r.Run(ctx) })
	}
	devtest.Eventually(t, "every row succeeded", func() bool {
		var n int
		_ = f.db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM byte8_event_outbox WHERE status = 'succeeded' AND attempts = 1").Scan(&n)
		return n == rows
	})
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != rows {
		t.Fatalf("%d keys published, want %d", len(seen), rows)
	}
	for key, n := range seen {
		if n != 1 {
			t.Fatalf("%s published %d times", key, n)
		}
	}
}

func TestSchemaCheckNamesTheTableAndColumn(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("mysql", devtest.MariaDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := relay.CheckSchema(t.Context(), db); err == nil || !strings.Contains(err.Error(), "byte8_event_outbox does not exist") {
		t.Fatalf("no table: %v", err)
	}
	if _, err := db.ExecContext(t.Context(), devtest.Byte8Tables[0]); err != nil {
		t.Fatal(err)
	}
	if err := relay.CheckSchema(t.Context(), db); err != nil {
		t.Fatalf("the module's table refused: %v", err)
	}
	if _, err := db.ExecContext(t.Context(), "ALTER TABLE byte8_event_outbox DROP COLUMN next_attempt_at, MODIFY attempts VARCHAR(8)"); err != nil {
		t.Fatal(err)
	}
	err = relay.CheckSchema(t.Context(), db)
	if err == nil || !strings.Contains(err.Error(), "byte8_event_outbox has no column next_attempt_at") || !strings.Contains(err.Error(), "column attempts is varchar, want int") {
		t.Fatalf("wrong columns: %v", err)
	}
}

// NATS crashes and comes back, and the relay is stopped and started again,
// while rows flow: every row ends succeeded and INGEST holds each once.
func TestRelayLosesNothingWhenNATSAndTheRelayRestart(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("mysql", devtest.ShopDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ns := devtest.NATSServer(t)
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectBufSize(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := bus.EnsureStreams(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, nc: nc, js: js}
	const rows = 400
	// Short back-off so the test need not wait the module's minute.
	cfg := relay.Config{MySQLDSN: "root@tcp(127.0.0.1:1)/x", TenantID: tenant, APIKey: secrets.String(apiKey),
		PollInterval: 10 * time.Millisecond, BatchSize: 20, PublishTimeout: time.Second, Backoff: []time.Duration{2 * time.Second}}
	start := func() func() {
		r, err := relay.New(cfg, db, nc, telemetry.Discard())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { _ = r.Run(ctx) })
		return func() { cancel(); wg.Wait() }
	}
	succeeded := func() int {
		var n int
		_ = db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM byte8_event_outbox WHERE status = 'succeeded'").Scan(&n)
		return n
	}
	stop := start()
	for i := range rows {
		f.enqueue(t, fmt.Sprintf("customer.upserted:%d", i), "customer.upserted", envelope(i))
		switch i {
		case rows / 4:
			ns = devtest.RestartNATS(t, ns) // a crash, with rows in flight
		case rows / 2:
			stop() // the relay stopped and started again
			stop = start()
		}
	}
	defer func() { stop() }()
	devtest.Eventually(t, "every row succeeded", func() bool { return succeeded() == rows },
		devtest.Within(90*time.Second), devtest.Explain(func() string { return fmt.Sprint(succeeded(), " of ", rows, " succeeded") }))
	var deadLettered int
	if err := db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM byte8_event_outbox WHERE status <> 'succeeded'").Scan(&deadLettered); err != nil || deadLettered != 0 {
		t.Fatalf("%d rows not succeeded (%v)", deadLettered, err)
	}
	s, err := js.Stream(t.Context(), bus.StreamIngest)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != rows {
		t.Fatalf("INGEST holds %d messages for %d rows", info.State.Msgs, rows)
	}
}
