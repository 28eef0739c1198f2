package relay_test

import (
	"context"
	"database/sql"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

type syncRow struct {
	Status, At          string
	ProviderID, SkipRsn sql.NullString
}

func (f *fixture) syncState(t *testing.T, entity string, id int64) (syncRow, bool) {
	t.Helper()
	var r syncRow
	err := f.db.QueryRowContext(t.Context(), "SELECT sync_status, DATE_FORMAT(last_sync_at, '%Y-%m-%d %H:%i:%s'), provider_entity_id, skip_reason"+
		" FROM byte8_entity_sync_state WHERE entity_type = ? AND magento_id = ? AND provider = 'sage_accounting'", entity, id).
		Scan(&r.Status, &r.At, &r.ProviderID, &r.SkipRsn)
	if err == sql.ErrNoRows {
		return r, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return r, true
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBackChannelAppliesSyncStatesNewestWinsAndRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := f.db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	// The module's pending write-through, stamped by a shop clock ahead of
	// Ledger's: it still gives way.
	exec("INSERT INTO byte8_entity_sync_state (entity_type, magento_id, provider, sync_status, last_sync_at) VALUES ('invoice', 1, 'sage_accounting', 'pending', '2026-06-01 12:00:00')")
	// A terminal row newer than what arrives: kept.
	exec("INSERT INTO byte8_entity_sync_state (entity_type, magento_id, provider, sync_status, provider_entity_id, last_sync_at) VALUES ('invoice', 2, 'sage_accounting', 'synced', 'sage-2b', '2026-05-01 10:00:05')")
	// A row the relay published, which ingest then refused.
	f.enqueue(t, "invoice.created:9", "invoice.created", envelope(9))
	r := f.relay(t, f.nc)
	if n, err := r.Drain(ctx); err != nil || n != 1 {
		t.Fatalf("Drain = %d, %v", n, err)
	}

	publish := func(subject string, data []byte) {
		t.Helper()
		if _, err := f.js.Publish(ctx, subject, data); err != nil {
			t.Fatal(err)
		}
	}
	states := &ledgerv1.PushSyncStateRequest{TenantId: tenant, Entries: []*ledgerv1.SyncStateEntry{
		{EntityType: "invoice", MagentoEntityId: 1, Provider: "sage_accounting", SyncStatus: "synced", ProviderEntityId: "sage-1", LastSyncAt: "2026-05-01 10:00:00"},
		{EntityType: "invoice", MagentoEntityId: 2, Provider: "sage_accounting", SyncStatus: "failed", ErrorCode: "validation", LastSyncAt: "2026-05-01 10:00:01"},
		{EntityType: "creditmemo", MagentoEntityId: 3, Provider: "sage_accounting", SyncStatus: "skipped", SkipReason: "zero_value_invoice", LastSyncAt: "2026-05-01 10:00:02"},
	}}
	publish(bus.ShopSubject(tenant, bus.ShopSyncState), mustMarshal(t, states))
	// Never applicable: not decodable, and another tenant's rows on ours.
	publish(bus.ShopSubject(tenant, bus.ShopSyncState), []byte("\xff\xff not proto"))
	publish(bus.ShopSubject(tenant, bus.ShopSyncState), mustMarshal(t, &ledgerv1.PushSyncStateRequest{TenantId: "t2",
		Entries: []*ledgerv1.SyncStateEntry{{EntityType: "invoice", MagentoEntityId: 7, Provider: "sage_accounting", SyncStatus: "synced"}}}))
	publish(bus.ShopSubject(tenant, bus.ShopRefused), mustMarshal(t, &ledgerv1.RefusedRow{TenantId: tenant, IdempotencyKey: "invoice.created:9",
		StatusCode: 401, Error: "the token's signature does not verify: re-pair the shop", Code: "relay_unauthorized"}))

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.RunBack(rctx) }()
	defer func() { cancel(); <-done }()

	devtest.Eventually(t, "the sync states and the refusal applied", func() bool {
		s3, ok3 := f.syncState(t, "creditmemo", 3)
		return ok3 && s3.Status == "skipped" && f.row(t, "invoice.created:9").Status == "dead_lettered"
	})
	if s1, _ := f.syncState(t, "invoice", 1); s1.Status != "synced" || s1.ProviderID.String != "sage-1" || s1.At != "2026-05-01 10:00:00" {
		t.Errorf("a pending row did not give way: %+v", s1)
	}
	if s2, _ := f.syncState(t, "invoice", 2); s2.Status != "synced" || s2.ProviderID.String != "sage-2b" {
		t.Errorf("an older result overwrote a newer one: %+v", s2)
	}
	if s3, _ := f.syncState(t, "creditmemo", 3); s3.SkipRsn.String != "zero_value_invoice" || s3.ProviderID.Valid {
		t.Errorf("skipped row: %+v (provider_entity_id must be NULL)", s3)
	}
	if _, ok := f.syncState(t, "invoice", 7); ok {
		t.Error("another tenant's sync state was applied")
	}
	got := f.row(t, "invoice.created:9")
	if got.Code.Int64 != 401 || got.Error.String != "HTTP 401: the token's signature does not verify: re-pair the shop" || got.Attempts != 1 {
		t.Errorf("refused row: %+v", got)
	}
	// Everything is settled: applied ones acknowledged, the two bad ones
	// terminated; the work queue holds nothing.
	devtest.Eventually(t, "the SHOP stream drained", func() bool {
		s, err := f.js.Stream(ctx, bus.StreamShop)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
}
