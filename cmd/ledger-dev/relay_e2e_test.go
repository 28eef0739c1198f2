package main

// The pipeline with the outbox relay between the shop's database and NATS:
// the simulated shop's outbox rows are written to a real MariaDB
// byte8_event_outbox (the shop's cron never drains), two relay replicas tail
// it into INGEST, and ingest, the mapper, the writer and statecallback take
// them to the Sage simulator and back to the shop's sync-state grid.

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/nats-io/nats.go"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	"github.com/ledgersync/ledger/services/relay"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

func TestRelayEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	// The shop's own cron never runs: every row goes through the relay.
	st, err := stack.Start(ctx, stack.Options{StateDir: t.TempDir(), ShopDrainInterval: 24 * time.Hour})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	t.Cleanup(st.Close)
	const tenant = "relay-shop"
	if err := st.Onboard(ctx, tenant, "Relay shop"); err != nil {
		t.Fatalf("onboarding: %v", err)
	}
	tn, err := st.Store.Tenant(ctx, tenant)
	if err != nil || tn.Binding.APIKey == "" {
		t.Fatalf("tenant %s: %v (api key set: %v)", tenant, err, tn.Binding.APIKey != "")
	}
	seed := st.Shop.Seed(rand.New(rand.NewPCG(2026, 12)), magentosim.Options{Customers: 30, Invoices: 150, GuestShare: 0.3})
	expected := stack.ExpectSeed(seed)

	// The shop's outbox, row for row, in a real MariaDB.
	dsn := devtest.ShopDatabase(t)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows := st.Shop.Outbox()
	if len(rows) < len(expected) {
		t.Fatalf("the shop enqueued %d rows for %d entities", len(rows), len(expected))
	}
	for _, r := range rows {
		if _, err := db.ExecContext(ctx, "INSERT INTO byte8_event_outbox (idempotency_key, event_name, payload, last_error) VALUES (?, ?, ?, '')",
			r.IdempotencyKey, r.EventName, r.Payload); err != nil {
			t.Fatal(err)
		}
	}

	// Every publish to INGEST, duplicates included.
	var mu sync.Mutex
	published := map[string]int{}
	sub, err := st.NC.Subscribe(bus.IngestAll, func(m *nats.Msg) {
		mu.Lock()
		published[m.Header.Get(nats.MsgIdHdr)]++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := st.NC.Flush(); err != nil {
		t.Fatal(err)
	}

	// Two relay replicas on the one table.
	rctx, stopRelays := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopRelays(); wg.Wait() }()
	for range 2 {
		nc, err := nats.Connect(st.NATSURL, nats.MaxReconnects(-1), nats.ReconnectBufSize(-1))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		rl, err := relay.New(relay.Config{MySQLDSN: secrets.String(dsn), TenantID: tenant, APIKey: secrets.String(tn.Binding.APIKey),
			PollInterval: 50 * time.Millisecond}, db, nc, telemetry.Discard())
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = rl.Run(rctx) })
	}

	start := time.Now()
	var sum stack.Summary
	devtest.Eventually(t, "every entity synced through the relay", func() bool {
		sum = st.Check(expected)
		return sum.Synced+sum.Skipped+sum.Failed == len(expected)
	}, devtest.Until(ctx), devtest.Explain(func() string { return sum.String() }))
	t.Logf("%d rows, %d entities settled in %s through MariaDB → relay ×2 → INGEST → pipeline → Sage", len(rows), len(expected), time.Since(start).Round(time.Millisecond))
	if sum.Mismatched != 0 || sum.Duplicates != 0 || sum.Lost != 0 {
		t.Fatalf("%s mismatched=%d", sum, sum.Mismatched)
	}

	// Every row succeeded once, with the module's columns.
	var succeeded int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM byte8_event_outbox WHERE status = 'succeeded' AND attempts = 1 AND last_status_code = 202"+
		" AND last_attempt_at IS NOT NULL AND next_attempt_at IS NULL AND last_error IS NULL").Scan(&succeeded); err != nil {
		t.Fatal(err)
	}
	if succeeded != len(rows) {
		t.Fatalf("%d of %d rows succeeded with the cron's columns", succeeded, len(rows))
	}
	// One run per row, each key published once by the two replicas.
	runs, err := st.Store.ListRuns(ctx, store.RunFilter{TenantID: tenant, Limit: 1000}) // ListRuns' most; the test has fewer rows
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != len(rows) {
		t.Fatalf("%d runs for %d rows", len(runs), len(rows))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(published) != len(rows) {
		t.Fatalf("%d keys published for %d rows", len(published), len(rows))
	}
	for key, n := range published {
		if n != 1 {
			t.Fatalf("%s published %d times by the two relays", key, n)
		}
	}
}
