package devtest_test

import (
	"database/sql"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
)

func TestShopDatabaseHasTheByte8TablesAndSkipLocked(t *testing.T) {
	t.Parallel()
	a, b := devtest.ShopDatabase(t), devtest.ShopDatabase(t)
	if a == b {
		t.Fatal("two tests got the same database")
	}
	db, err := sql.Open("mysql", a)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	for _, key := range []string{"invoice.created:1", "invoice.created:2"} {
		if _, err := db.ExecContext(ctx, "INSERT INTO byte8_event_outbox (idempotency_key, event_name, payload, last_error) VALUES (?, 'invoice.created', '{}', '')", key); err != nil {
			t.Fatal(err)
		}
	}
	var status string
	var attempts int
	var next sql.NullTime
	if err := db.QueryRowContext(ctx, "SELECT status, attempts, next_attempt_at FROM byte8_event_outbox WHERE idempotency_key='invoice.created:1'").Scan(&status, &attempts, &next); err != nil {
		t.Fatal(err)
	}
	if status != "pending" || attempts != 0 || next.Valid {
		t.Fatalf("new row: status %q attempts %d next %v; want the module's defaults", status, attempts, next)
	}
	// Two claimers never get the same row: the second skips the first's lock.
	tx1, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback()
	tx2, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Rollback()
	const claim = "SELECT entity_id FROM byte8_event_outbox WHERE status='pending' ORDER BY entity_id LIMIT 1 FOR UPDATE SKIP LOCKED"
	var id1, id2 int64
	if err := tx1.QueryRowContext(ctx, claim).Scan(&id1); err != nil {
		t.Fatal(err)
	}
	if err := tx2.QueryRowContext(ctx, claim).Scan(&id2); err != nil {
		t.Fatal(err)
	}
	if id1 == id2 {
		t.Fatalf("both claimed row %d", id1)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM byte8_entity_sync_state").Scan(&n); err != nil || n != 0 {
		t.Fatalf("byte8_entity_sync_state: %d rows, %v", n, err)
	}
}
