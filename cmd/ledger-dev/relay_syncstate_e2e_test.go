package main

// A shop that takes no inbound call: its outbox rows reach Ledger through the
// relay, and its sync states come back the same way (the tenant's sync-state
// transport is nats: statecallback publishes to the SHOP stream and the relay
// upserts byte8_entity_sync_state in the shop's MariaDB). Rows ingest refuses
// reach the shop too: a relay with a drifted api key sees its rows
// dead-lettered with 401 in the shop's own outbox table.

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/nats-io/nats.go"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/relay"
	"github.com/ledgersync/ledger/services/statecallback"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

func TestRelaySyncStateAndRefusalsOverNATS(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	st, err := stack.Start(ctx, stack.Options{StateDir: t.TempDir(), ShopDrainInterval: 24 * time.Hour})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	t.Cleanup(st.Close)
	const tenant, drifted = "firewalled", "drifted"
	if err := st.Onboard(ctx, tenant, "Shop behind a firewall"); err != nil {
		t.Fatalf("onboarding: %v", err)
	}
	admin, closeAdmin, err := st.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer closeAdmin()
	got, err := admin.SetSyncStateTransport(ctx, &ledgerv1.SetSyncStateTransportRequest{TenantId: tenant, Transport: "nats"})
	if err != nil || got.GetTenant().GetSyncStateTransport() != "nats" {
		t.Fatalf("SetSyncStateTransport: %v, %v", got, err)
	}
	if _, err := admin.SetSyncStateTransport(ctx, &ledgerv1.SetSyncStateTransportRequest{TenantId: tenant, Transport: "smtp"}); err == nil ||
		!strings.Contains(err.Error(), "use http") {
		t.Fatalf("a bad transport: %v", err)
	}
	// The drifted shop is paired, but its relay signs with an old key.
	if _, err := st.Store.CreateTenant(ctx, drifted, "Drifted shop"); err != nil {
		t.Fatal(err)
	}
	if err := st.Store.SetMagentoPaired(ctx, drifted, "https://drifted.example.test", "byte8_lk_the_key_ledger_holds_now"); err != nil {
		t.Fatal(err)
	}

	tn, err := st.Store.Tenant(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	st.Shop.Seed(rand.New(rand.NewPCG(7, 12)), magentosim.Options{Customers: 10, Invoices: 40, GuestShare: 0.3})
	rows := st.Shop.Outbox()

	shopDB := func(rows []magentosim.OutboxRow, rewrite func(magentosim.OutboxRow) magentosim.OutboxRow) (*sql.DB, string) {
		t.Helper()
		dsn := devtest.ShopDatabase(t)
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		for _, r := range rows {
			r = rewrite(r)
			if _, err := db.ExecContext(ctx, "INSERT INTO byte8_event_outbox (idempotency_key, event_name, payload, last_error) VALUES (?, ?, ?, '')",
				r.IdempotencyKey, r.EventName, r.Payload); err != nil {
				t.Fatal(err)
			}
		}
		return db, dsn
	}
	db, dsn := shopDB(rows, func(r magentosim.OutboxRow) magentosim.OutboxRow { return r })
	driftDB, driftDSN := shopDB(rows[:7], func(r magentosim.OutboxRow) magentosim.OutboxRow {
		r.IdempotencyKey = "drift:" + r.IdempotencyKey
		return r
	})

	rctx, stopRelays := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopRelays(); wg.Wait() }()
	startRelay := func(tenantID, key, dsn string, db *sql.DB) {
		nc, err := nats.Connect(st.NATSURL, nats.MaxReconnects(-1), nats.ReconnectBufSize(-1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		rl, err := relay.New(relay.Config{MySQLDSN: secrets.String(dsn), TenantID: tenantID, APIKey: secrets.String(key),
			PollInterval: 50 * time.Millisecond}, db, nc, telemetry.Discard())
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = rl.Run(rctx) })
		wg.Go(func() { _ = rl.RunBack(rctx) })
	}
	startRelay(tenant, tn.Binding.APIKey, dsn, db)
	startRelay(drifted, "byte8_lk_the_key_the_shop_kept", driftDSN, driftDB)

	// Every mirrored entity's sync state lands in the shop's own table, as
	// Ledger recorded the newest outcome of its runs.
	var problem string
	devtest.Eventually(t, "every sync state in the shop's MariaDB", func() bool {
		rs, err := st.Store.ListRuns(ctx, store.RunFilter{TenantID: tenant, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) < len(rows) {
			problem = fmt.Sprintf("%d runs for %d rows", len(rs), len(rows))
			return false
		}
		newest := map[string]store.Run{}
		for _, r := range rs { // newest first
			if !r.Terminal() {
				problem = fmt.Sprintf("run %s is %s", r.ID, r.Status)
				return false
			}
			if k := fmt.Sprintf("%s/%d", r.EntityType, r.MagentoEntityID); newest[k].ID == "" && slices.Contains(statecallback.MirroredEntityTypes, r.EntityType) {
				newest[k] = r
			}
		}
		for k, r := range newest {
			var status string
			var provider sql.NullString
			err := db.QueryRowContext(ctx, "SELECT sync_status, provider_entity_id FROM byte8_entity_sync_state WHERE entity_type = ? AND magento_id = ? AND provider = 'sage_accounting'",
				r.EntityType, r.MagentoEntityID).Scan(&status, &provider)
			want := map[string]string{store.RunSucceeded: "synced", store.RunSkipped: "skipped", store.RunFailed: "failed"}[r.Status]
			if err != nil || status != want || (want == "synced" && provider.String != r.SageID) {
				problem = fmt.Sprintf("%s: run %s (%s) → shop row %q %q (%v)", k, r.Status, r.SageID, status, provider.String, err)
				return false
			}
		}
		problem = fmt.Sprintf("%d entities mirrored", len(newest))
		return len(newest) > 0
	}, devtest.Until(ctx), devtest.Explain(func() string { return problem }))
	t.Logf("sync states over NATS: %s for %d rows", problem, len(rows))
	// Nothing went to the shop's REST endpoint: its mirror holds only the
	// module's own pending write-through.
	for _, r := range st.Shop.SyncStates() {
		if r.SyncStatus != magentosim.SyncPending {
			t.Fatalf("the shop's REST sync-state endpoint got %s/%d %s for a nats binding", r.EntityType, r.MagentoID, r.SyncStatus)
		}
	}

	// The drifted shop's rows are dead-lettered in its own table with the
	// webhook's 401, so its banner shows them.
	devtest.Eventually(t, "the drifted shop's rows dead-lettered with 401", func() bool {
		var n int
		_ = driftDB.QueryRowContext(ctx, "SELECT COUNT(*) FROM byte8_event_outbox WHERE status = 'dead_lettered' AND last_status_code = 401 AND last_error LIKE 'HTTP 401: %'").Scan(&n)
		return n == 7
	}, devtest.Until(ctx))
	var lastErr string
	if err := driftDB.QueryRowContext(ctx, "SELECT last_error FROM byte8_event_outbox LIMIT 1").Scan(&lastErr); err != nil {
		t.Fatal(err)
	}
	t.Logf("the drifted shop's banner reads: %s", lastErr)
}
