package stack

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql" // the shop database's driver

	"github.com/ledgersync/ledger/libs/devstack"
	"github.com/ledgersync/ledger/libs/secrets"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/relay"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// RelayShop is a simulated shop connected the relay's way (docs/relay.md):
// its module writes outbox rows into a real MariaDB byte8_event_outbox and its
// cron never delivers; Ledger's relay tails the table into INGEST and applies
// the tenant's SHOP back channel (sync states, with the tenant's sync-state
// transport set to nats, and refused rows) to the same database. The shop
// takes no inbound call from Ledger but the canonical fetches.
type RelayShop struct {
	TenantID string
	Shop     *magentosim.Shop
	ShopURL  string
	// DSN is the shop's MariaDB database; DB is open on it.
	DSN string
	DB  *sql.DB
	// RelayURL serves the relay's /healthz, /readyz and /metrics.
	RelayURL string
}

// StartRelayShop gives tenantID a database of its own on the stack's MariaDB
// (started from the machine's binaries by the first relay shop;
// devstack.HaveMariaDB says whether they are there), a simulated shop whose
// outbox is copied into it as the module writes rows, onboards the tenant
// (Sage user sageUser, so its documents live in a business of their own),
// sets its sync-state transport to nats and runs a relay for it.
func (s *Stack) StartRelayShop(ctx context.Context, tenantID, name, sageUser string) (*RelayShop, error) {
	m, err := s.shopServer(ctx)
	if err != nil {
		return nil, err
	}
	rs := &RelayShop{TenantID: tenantID}
	if rs.DSN, err = m.CreateShopDatabase(ctx, "magento_"+strings.ReplaceAll(tenantID, "-", "_")); err != nil {
		return nil, err
	}
	if rs.DB, err = sql.Open("mysql", rs.DSN); err != nil {
		return nil, err
	}
	s.onClose(func() { _ = rs.DB.Close() })
	// The module's cron never runs: the relay delivers every row.
	if rs.Shop, rs.ShopURL, err = s.AddShop("magento-sim-"+tenantID, magentosim.Config{DrainInterval: 24 * time.Hour}); err != nil {
		return nil, err
	}
	s.goRun(tenantID+" outbox writer", rs.copyOutbox)
	if err := s.OnboardShop(ctx, tenantID, name, rs.Shop, rs.ShopURL, sageUser); err != nil {
		return nil, err
	}
	admin, closeConn, err := s.Admin()
	if err != nil {
		return nil, err
	}
	defer closeConn()
	if _, err := admin.SetSyncStateTransport(ctx, &ledgerv1.SetSyncStateTransportRequest{TenantId: tenantID, Transport: "nats"}); err != nil {
		return nil, fmt.Errorf("sync-state transport of %s: %w", tenantID, err)
	}
	t, err := s.Store.Tenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	// The relay reads the tenant id and api key the shop holds since pairing.
	// Named for the tenant: StopService("relay-<tenant>") stops this one.
	prog := relay.Program(rs.RelayConfig(s, t.Binding.APIKey))
	prog.Name = "relay-" + tenantID
	r, err := s.startProgram(ctx, prog)
	if err != nil {
		return nil, err
	}
	rs.RelayURL = r.URL()
	return rs, nil
}

// RelayConfig is the configuration of a relay of this shop (the stack's
// shops' back-off instead of the module's minutes); tests start more
// replicas with it.
func (rs *RelayShop) RelayConfig(s *Stack, apiKey string) relay.Config {
	return relay.Config{Addr: loopback, MySQLDSN: secrets.String(rs.DSN), TenantID: rs.TenantID, APIKey: secrets.String(apiKey),
		NATSURL: secrets.String(s.NATSURL), PollInterval: 100 * time.Millisecond, Backoff: s.shopBackoff}
}

// shopServer is the stack's MariaDB, started on first use.
func (s *Stack) shopServer(ctx context.Context) (*devstack.MariaDB, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mariadb != nil {
		return s.mariadb, nil
	}
	m, err := devstack.StartMariaDB(ctx, devstack.MariaDBOptions{Logger: s.Log.With("component", "mariadb")})
	if err != nil {
		return nil, err
	}
	s.mariadb = m
	s.closers = append(s.closers, func() { _ = m.Stop() })
	return m, nil
}

// copyOutbox plays the module's enqueue: every row the simulated shop puts in
// its outbox is inserted into byte8_event_outbox (once: the key is unique).
func (rs *RelayShop) copyOutbox(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	copied := map[string]bool{}
	for {
		for _, r := range rs.Shop.Outbox() {
			if copied[r.IdempotencyKey] {
				continue
			}
			if _, err := rs.DB.ExecContext(ctx, "INSERT IGNORE INTO byte8_event_outbox (idempotency_key, event_name, payload, last_error) VALUES (?, ?, ?, '')",
				r.IdempotencyKey, r.EventName, r.Payload); err != nil {
				break // MariaDB busy or stopping: the next tick tries again
			}
			copied[r.IdempotencyKey] = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Check reads the relay shop's ends now: its MariaDB sync-state mirror and
// outbox, and the documents in its Sage business.
func (rs *RelayShop) Check(ctx context.Context, s *Stack, expected []Expected) Summary {
	var sum Summary
	for _, e := range expected {
		var status string
		err := rs.DB.QueryRowContext(ctx, "SELECT sync_status FROM byte8_entity_sync_state WHERE entity_type = ? AND magento_id = ? AND provider = 'sage_accounting'",
			e.EntityType, e.MagentoID).Scan(&status)
		if err != nil || status == "pending" {
			sum.Lost++
			continue
		}
		switch status {
		case "synced":
			sum.Synced++
		case "skipped":
			sum.Skipped++
		case "failed":
			sum.Failed++
		}
		if status != e.Status {
			sum.Mismatched++
		}
	}
	var pending, dead int
	_ = rs.DB.QueryRowContext(ctx, "SELECT COALESCE(SUM(status = 'pending'), 0), COALESCE(SUM(status = 'dead_lettered'), 0) FROM byte8_event_outbox").Scan(&pending, &dead)
	// Rows the simulated module has not written yet are pending too.
	var rows int
	_ = rs.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM byte8_event_outbox").Scan(&rows)
	sum.Pending = pending + max(len(rs.Shop.Outbox())-rows, 0)
	sum.Lost += dead
	if t, err := s.Store.Tenant(ctx, rs.TenantID); err == nil {
		sum.Duplicates = s.sageDuplicates(t.Binding.SageBusinessID)
	}
	return sum
}
