package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/store"
)

// openTransactions counts the sessions of the test's database that are in a
// transaction between statements (the unit's, while it decides).
func openTransactions(t *testing.T, st *store.Store) int {
	t.Helper()
	var n int
	if err := st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A unit's reads and its record are one transaction: open from the first
// read, committed with the record, and its connection back in the pool.
func TestUnitReadsAndRecordsInOneTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t)
	acc, _ := st.AcceptWebhook(ctx, delivery("invoice.created:21"), time.Hour)
	if err := st.PutXref(ctx, store.Xref{TenantID: "t1", Kind: "contact_ref", MagentoKey: "CUST1", SageID: "M1|GBP", Reference: "CUST1"}); err != nil {
		t.Fatal(err)
	}

	u := st.Unit()
	defer u.Close()
	links, err := u.Xrefs(ctx, "t1", []store.XrefKey{{Kind: "contact_ref", MagentoKey: "CUST1"}, {Kind: "contact_ref", MagentoKey: "CUST2"}})
	if err != nil || len(links) != 1 || links[store.XrefKey{Kind: "contact_ref", MagentoKey: "CUST1"}].SageID != "M1|GBP" {
		t.Fatalf("links %+v %v", links, err)
	}
	if _, err := u.Xref(ctx, "t1", "invoice_contact", "21", "GBP"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("absent link: %v", err)
	}
	if n := openTransactions(t, st); n != 1 {
		t.Fatalf("%d transactions open after the unit's reads, want its own", n)
	}
	link := store.Xref{TenantID: "t1", Kind: "invoice_contact", MagentoKey: "21", Currency: "GBP", SageID: "M2|GBP", Reference: "CUST2"}
	r, err := u.StartAndRecordMapping(ctx, acc.RunID, 3, store.Mapping{Policy: []byte(`{}`), Links: []store.Xref{link}})
	if err != nil || r.Status != store.RunRunning {
		t.Fatalf("record: %+v %v", r, err)
	}
	if n := openTransactions(t, st); n != 0 {
		t.Fatalf("%d transactions open after the record", n)
	}
	if x, err := st.Xref(ctx, "t1", "invoice_contact", "21", "GBP"); err != nil || x.SageID != "M2|GBP" {
		t.Fatalf("the record's link: %+v %v", x, err)
	}
	if s := st.Pool().Stat(); s.AcquiredConns() != 0 {
		t.Fatalf("%d connections still acquired after the record", s.AcquiredConns())
	}
}

// A unit closed without its record leaves nothing behind: no transaction, no
// held connection; a record that fails commits nothing of the unit.
func TestUnitClosedOrFailedCommitsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t)
	acc, _ := st.AcceptWebhook(ctx, delivery("invoice.created:22"), time.Hour)

	u := st.Unit()
	if _, err := u.Xrefs(ctx, "t1", []store.XrefKey{{Kind: "contact_ref", MagentoKey: "X"}}); err != nil {
		t.Fatal(err)
	}
	u.Close()
	u.Close() // twice is fine
	if n := openTransactions(t, st); n != 0 {
		t.Fatalf("%d transactions open after Close", n)
	}
	if s := st.Pool().Stat(); s.AcquiredConns() != 0 {
		t.Fatalf("%d connections still acquired after Close", s.AcquiredConns())
	}

	// The record's attempt names a run that does not exist: the whole
	// round trip fails, so the link recorded with it is not kept.
	u = st.Unit()
	defer u.Close()
	if _, err := u.Xrefs(ctx, "t1", []store.XrefKey{{Kind: "contact_ref", MagentoKey: "Y"}}); err != nil {
		t.Fatal(err)
	}
	link := store.Xref{TenantID: "t1", Kind: "contact_ref", MagentoKey: "Y", SageID: "M9|GBP", Reference: "Y"}
	bad := store.Attempt{RunID: "00000000-0000-0000-0000-000000000000", Stage: "mapper", Method: "GET", Path: "/x", Outcome: "ok"}
	if _, err := u.StartAndRecordMapping(ctx, acc.RunID, 4, store.Mapping{Links: []store.Xref{link}, Attempts: []store.Attempt{bad}}); err == nil {
		t.Fatal("a record whose attempt names no run succeeded")
	}
	if _, err := st.Xref(ctx, "t1", "contact_ref", "Y", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed record kept its link: %v", err)
	}
	if r, err := st.Run(ctx, acc.RunID); err != nil || r.Status != store.RunPending {
		t.Fatalf("a failed record started its run: %+v %v", r, err)
	}
	if n := openTransactions(t, st); n != 0 {
		t.Fatalf("%d transactions open after a failed record", n)
	}
	if s := st.Pool().Stat(); s.AcquiredConns() != 0 {
		t.Fatalf("%d connections still acquired after a failed record", s.AcquiredConns())
	}
}

// A unit from Units (the sage-writer's delivery) keeps its start to itself
// until it commits: at a checkpoint, which writes the journal so far with the
// start, or at its conclusion. After a checkpoint the conclusion commits on
// its own.
func TestLongUnitCommitsItsStartWithTheJournal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t)
	units, err := st.NewUnits(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer units.Close()
	acc, _ := st.AcceptWebhook(ctx, delivery("invoice.created:23"), time.Hour)
	if _, err := st.StartRunFrom(ctx, acc.RunID, 1); err != nil { // the mapper's start
		t.Fatal(err)
	}

	u := units.Unit()
	defer u.Close()
	r, earlier, links, err := u.StartStageWithLinks(ctx, acc.RunID, "sage-writer", "t1", []store.XrefKey{{Kind: "contact", MagentoKey: "M1", Currency: "GBP"}})
	if err != nil || r.Attempts != 2 || earlier || len(links) != 0 {
		t.Fatalf("start: %+v %v %v %v", r, earlier, links, err)
	}
	if seen, _ := st.Run(ctx, acc.RunID); seen.Attempts != 1 {
		t.Fatalf("the start was seen before its commit: %+v", seen)
	}
	if atts, err := u.Attempts(ctx, acc.RunID); err != nil || len(atts) != 0 {
		t.Fatalf("attempts in the unit: %+v %v", atts, err)
	}
	ambiguous := store.Attempt{RunID: acc.RunID, Stage: "sage-writer", Method: "POST", Path: "/contacts", Outcome: "ambiguous"}
	if err := u.WriteJournal(ctx, store.Journal{Attempts: []store.Attempt{ambiguous}}); err != nil {
		t.Fatal(err)
	}
	if seen, _ := st.Run(ctx, acc.RunID); seen.Attempts != 2 {
		t.Fatalf("the checkpoint did not commit the start: %+v", seen)
	}
	link := store.LinkWrite{Xref: store.Xref{TenantID: "t1", Kind: "contact", MagentoKey: "M1", Currency: "GBP", SageID: "c1", Reference: "CUST1"}}
	done, err := u.FinishRunWith(ctx, store.Outcome{RunID: acc.RunID, Status: store.RunSucceeded, SageID: "c1"}, store.Journal{Links: []store.LinkWrite{link}})
	if err != nil || done.Status != store.RunSucceeded {
		t.Fatalf("conclusion: %+v %v", done, err)
	}
	if atts, _ := st.Attempts(ctx, acc.RunID); len(atts) != 1 || atts[0].Outcome != "ambiguous" {
		t.Fatalf("attempts %+v", atts)
	}
	if x, err := st.Xref(ctx, "t1", "contact", "M1", "GBP"); err != nil || x.SageID != "c1" {
		t.Fatalf("the conclusion's link: %+v %v", x, err)
	}
	if n := openTransactions(t, st); n != 0 {
		t.Fatalf("%d transactions open after the conclusion", n)
	}
}
