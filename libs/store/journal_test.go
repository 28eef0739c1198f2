package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/store"
)

// StartStage reports earlier attempts of its own stage only, in the statement
// that starts the run.
func TestStartStageReportsEarlierAttempts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t)
	acc, _ := st.AcceptWebhook(ctx, delivery("invoice.created:7"), time.Hour)
	if _, err := st.StartRunFrom(ctx, acc.RunID, 1); err != nil { // the mapper's start
		t.Fatal(err)
	}
	if err := st.RecordAttempt(ctx, store.Attempt{RunID: acc.RunID, Stage: "mapper", Method: "GET", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	r, earlier, err := st.StartStage(ctx, acc.RunID, "sage-writer")
	if err != nil || earlier || r.Status != store.RunRunning || r.Attempts != 2 {
		t.Fatalf("first writer start: %+v, earlier %v, %v", r, earlier, err)
	}
	if err := st.WriteJournal(ctx, store.Journal{Attempts: []store.Attempt{
		{RunID: acc.RunID, Stage: "sage-writer", Method: "POST", Path: "/contacts", Outcome: "ambiguous"}}}); err != nil {
		t.Fatal(err)
	}
	if r, earlier, err = st.StartStage(ctx, acc.RunID, "sage-writer"); err != nil || !earlier || r.Attempts != 3 {
		t.Fatalf("second writer start: %+v, earlier %v, %v", r, earlier, err)
	}
	if _, _, err := st.StartStage(ctx, "00000000-0000-0000-0000-000000000000", "sage-writer"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown run: %v", err)
	}

	// With the links, in the same round trip.
	if err := st.PutXref(ctx, store.Xref{TenantID: "t1", Kind: "contact", MagentoKey: "M7", Currency: "GBP", SageID: "c7"}); err != nil {
		t.Fatal(err)
	}
	keys := []store.XrefKey{{Kind: "contact", MagentoKey: "M7", Currency: "GBP"}, {Kind: "invoice", MagentoKey: "7", Currency: "GBP"}}
	r, earlier, links, err := st.StartStageWithLinks(ctx, acc.RunID, "sage-writer", "t1", keys)
	if err != nil || !earlier || r.Attempts != 4 || len(links) != 1 || links[keys[0]].SageID != "c7" {
		t.Fatalf("start with links: %+v, earlier %v, links %+v, %v", r, earlier, links, err)
	}
	if _, _, _, err := st.StartStageWithLinks(ctx, "00000000-0000-0000-0000-000000000000", "sage-writer", "t1", keys); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown run with links: %v", err)
	}
}

// A journal is written with the run's conclusion in one transaction: its
// attempts in order with their own times, its links and digests in order; and
// when the conclusion fails nothing of it is written.
func TestJournalIsWrittenWithTheConclusion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t)
	acc, _ := st.AcceptWebhook(ctx, delivery("invoice.created:8"), time.Hour)
	if _, _, err := st.StartStage(ctx, acc.RunID, "sage-writer"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	contact := store.Xref{TenantID: "t1", Kind: "contact", MagentoKey: "M8", Currency: "GBP", SageID: "c8", Reference: "M8", Digest: "d1"}
	j := store.Journal{
		Attempts: []store.Attempt{
			{RunID: acc.RunID, Stage: "sage-writer", Method: "POST", Path: "/contacts", HTTPStatus: 201, Duration: 40 * time.Millisecond,
				RequestID: "r1", Outcome: "ok", At: at},
			{RunID: acc.RunID, Stage: "sage-writer", Method: "POST", Path: "/sales_invoices", HTTPStatus: 500, Outcome: "retry",
				ErrorSource: "base", Envelope: "boom", At: at.Add(time.Second)},
		},
		Links: []store.LinkWrite{
			{Xref: contact},
			{Xref: store.Xref{TenantID: "t1", Kind: "contact", MagentoKey: "M8", Currency: "GBP", SageID: "c8", Digest: "d2"}, DigestOnly: true},
			// Names another document than the link: changes nothing.
			{Xref: store.Xref{TenantID: "t1", Kind: "contact", MagentoKey: "M8", Currency: "GBP", SageID: "other", Digest: "d3"}, DigestOnly: true},
		},
	}

	// The conclusion fails (sage_change has a CHECK): nothing is written.
	if _, err := st.FinishRunWith(ctx, store.Outcome{RunID: acc.RunID, Status: store.RunSucceeded, Change: "bogus"}, j); err == nil {
		t.Fatal("a change outside the CHECK was accepted")
	}
	if atts, _ := st.Attempts(ctx, acc.RunID); len(atts) != 0 {
		t.Fatalf("attempts written by a failed conclusion: %+v", atts)
	}
	if _, err := st.Xref(ctx, "t1", "contact", "M8", "GBP"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("link written by a failed conclusion: %v", err)
	}

	// A transient failure notes the error with the journal.
	if err := st.NoteRunErrorWith(ctx, acc.RunID, "provider", "Sage 500", j); err != nil {
		t.Fatal(err)
	}
	r, _ := st.Run(ctx, acc.RunID)
	if r.ErrorClass != "provider" || r.LastError != "Sage 500" || r.Terminal() {
		t.Fatalf("run after NoteRunErrorWith: %+v", r)
	}
	atts, _ := st.Attempts(ctx, acc.RunID)
	if len(atts) != 2 || atts[0].Path != "/contacts" || atts[0].HTTPStatus != 201 || atts[0].Duration != 40*time.Millisecond ||
		atts[0].RequestID != "r1" || !atts[0].At.Equal(at) || atts[1].Outcome != "retry" || atts[1].ErrorSource != "base" ||
		atts[1].Envelope != "boom" || !atts[1].At.Equal(at.Add(time.Second)) {
		t.Fatalf("attempts %+v", atts)
	}
	want := contact
	want.Digest = "d2"
	if x, err := st.Xref(ctx, "t1", "contact", "M8", "GBP"); err != nil || x != want {
		t.Fatalf("link %+v %v, want %+v", x, err, want)
	}

	// Success finishes the run with the next delivery's journal.
	done, err := st.FinishRunWith(ctx, store.Outcome{RunID: acc.RunID, Status: store.RunSucceeded, SageID: "i8",
		Change: store.ChangeCreated}, store.Journal{Attempts: []store.Attempt{
		{RunID: acc.RunID, Stage: "sage-writer", Method: "POST", Path: "/sales_invoices", HTTPStatus: 201, Outcome: "ok"}}})
	if err != nil || done.Status != store.RunSucceeded || done.SageID != "i8" || done.Change != store.ChangeCreated || done.FinishedAt == nil {
		t.Fatalf("finished %+v %v", done, err)
	}
	if atts, _ := st.Attempts(ctx, acc.RunID); len(atts) != 3 || atts[2].Path != "/sales_invoices" || atts[2].At.IsZero() {
		t.Fatalf("attempts after finishing %+v", atts)
	}
}

// The mapper's start and its mapping record are one transaction; a run that
// is finished already is not restarted and keeps its own record.
func TestStartAndRecordMapping(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t)
	acc, _ := st.AcceptWebhook(ctx, delivery("invoice.created:8"), time.Hour)
	m := store.Mapping{Policy: []byte(`{"v":1}`), Canonical: []byte(`{"invoice/8":{}}`), SageRequest: []byte(`{"operations":[]}`),
		Attempts: []store.Attempt{{RunID: acc.RunID, Stage: "mapper", Method: "GET", Path: "/rest/V1/byte8/invoice/8", HTTPStatus: 200, Outcome: "ok"}},
		Links:    []store.Xref{{TenantID: "t1", Kind: "invoice_contact", MagentoKey: "8", Currency: "GBP", SageID: "M1|GBP", Reference: "CUST1"}}}
	r, err := st.Unit().StartAndRecordMapping(ctx, acc.RunID, 11, m)
	if err != nil || r.Status != store.RunRunning || r.Attempts != 1 {
		t.Fatalf("start: %+v %v", r, err)
	}
	got, err := st.RunMapping(ctx, acc.RunID)
	if err != nil || !jsonEq(got.Policy, m.Policy) || !jsonEq(got.Canonical, m.Canonical) {
		t.Fatalf("mapping %+v %v", got, err)
	}
	if atts, err := st.Attempts(ctx, acc.RunID); err != nil || len(atts) != 1 || atts[0].Path != "/rest/V1/byte8/invoice/8" {
		t.Fatalf("attempts %+v %v", atts, err)
	}
	if x, err := st.Xref(ctx, "t1", "invoice_contact", "8", "GBP"); err != nil || x.SageID != "M1|GBP" {
		t.Fatalf("link %+v %v", x, err)
	}

	if _, err := st.FinishRun(ctx, store.Outcome{RunID: acc.RunID, Status: store.RunSucceeded, SageID: "s1"}); err != nil {
		t.Fatal(err)
	}
	again := m
	again.Policy, again.Attempts, again.Links = []byte(`{"v":2}`), nil, nil
	if r, err := st.Unit().StartAndRecordMapping(ctx, acc.RunID, 12, again); err != nil || r.Status != store.RunSucceeded || r.Attempts != 1 {
		t.Fatalf("a finished run restarted: %+v %v", r, err)
	}
	if got, _ := st.RunMapping(ctx, acc.RunID); !jsonEq(got.Policy, m.Policy) {
		t.Fatalf("a finished run's mapping was replaced: %s", got.Policy)
	}
	if _, err := st.Unit().StartAndRecordMapping(ctx, "00000000-0000-0000-0000-000000000000", 1, m); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown run: %v", err)
	}
}

func jsonEq(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}
