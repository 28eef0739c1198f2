package sagewriter_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/store"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// countingStore counts the writer's calls of its deliveries' methods, each
// a store round trip, on deliveries from the real store's units, and fails
// the first conclusions when told to (a database that fails at the end of a
// write).
type countingStore struct {
	units      *store.Units
	mu         sync.Mutex
	calls      map[string]int
	journals   []store.Journal // what WriteJournal was given
	failFinish int             // how many FinishRunWith calls fail before writing
}

func (c *countingStore) count(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[name]++
}

func (c *countingStore) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

func (c *countingStore) open() sagewriter.Delivery {
	return &countingDelivery{Delivery: c.units.Unit(), c: c}
}

// countingDelivery is one delivery of a countingStore.
type countingDelivery struct {
	sagewriter.Delivery
	c *countingStore
}

func (d *countingDelivery) StartStageWithLinks(ctx context.Context, id, stage, tenantID string, keys []store.XrefKey) (store.Run, bool, map[store.XrefKey]store.Xref, error) {
	d.c.count("StartStageWithLinks")
	return d.Delivery.StartStageWithLinks(ctx, id, stage, tenantID, keys)
}

func (d *countingDelivery) Attempts(ctx context.Context, runID string) ([]store.Attempt, error) {
	d.c.count("Attempts")
	return d.Delivery.Attempts(ctx, runID)
}

func (d *countingDelivery) FinishRunWith(ctx context.Context, o store.Outcome, j store.Journal) (store.Run, error) {
	d.c.count("FinishRunWith")
	d.c.mu.Lock()
	fail := d.c.failFinish > 0
	d.c.failFinish--
	d.c.mu.Unlock()
	if fail {
		return store.Run{}, errors.New("connection reset by peer")
	}
	return d.Delivery.FinishRunWith(ctx, o, j)
}

func (d *countingDelivery) NoteRunErrorWith(ctx context.Context, id, class, message string, j store.Journal) error {
	d.c.count("NoteRunErrorWith")
	return d.Delivery.NoteRunErrorWith(ctx, id, class, message, j)
}

func (d *countingDelivery) WriteJournal(ctx context.Context, j store.Journal) error {
	d.c.count("WriteJournal")
	d.c.mu.Lock()
	d.c.journals = append(d.c.journals, j)
	d.c.mu.Unlock()
	return d.Delivery.WriteJournal(ctx, j)
}

// startCounted runs the writer on the stack's store, its deliveries counted
// by cs.
func (s *stack) startCounted(cfg sagewriter.Config, cs *countingStore) {
	s.t.Helper()
	units, err := s.st.NewUnits(s.t.Context(), 4)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(units.Close) // after the writer has stopped (cleanups run last first)
	cs.units = units
	s.startOn(cfg, s.st, func(svc *sagewriter.Service) { sagewriter.SetDeliveries(svc, cs.open) })
}

// A first delivery, started by the mapper as in production (so the run has
// counted an attempt already), reads no attempt history, reads the write's
// links with the run's start and records its attempts and links with the run's
// conclusion: two store round trips besides the tenant and its token.
func TestFirstDeliveryReadsNoHistory(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	cs := &countingStore{}
	s.startCounted(s.config(), cs)
	run := s.newRun("invoice.created", 21)
	if _, err := s.st.StartRunFrom(t.Context(), run, 1); err != nil { // the mapper's start
		t.Fatal(err)
	}
	s.publish(s.invoiceWrite(run, 21))
	r := s.waitRun(run)
	if r.Status != store.RunSucceeded || r.Attempts != 2 || r.Change != store.ChangeCreated {
		t.Fatalf("run %+v", r)
	}
	want := map[string]int{"StartStageWithLinks": 1, "FinishRunWith": 1}
	if got := cs.counts(); !equalCounts(got, want) {
		t.Fatalf("store calls %v, want %v", got, want)
	}
	var calls []string
	for _, a := range s.attempts(run) {
		calls = append(calls, a.Method+" "+a.Path+" "+a.Outcome)
	}
	if !slices.Equal(calls, []string{"POST /contacts ok", "POST /sales_invoices ok"}) {
		t.Fatalf("attempts %v", calls)
	}
	for _, k := range [][2]string{{"contact", "M21"}, {"invoice", "21"}} {
		if _, err := s.st.Xref(t.Context(), tenantID, k[0], k[1], "GBP"); err != nil {
			t.Fatalf("link %v: %v", k, err)
		}
	}

	// The next write of the same customer finds its contact among the links
	// read at its start and creates only the invoice.
	run2 := s.newRun("invoice.created", 22)
	w := s.invoiceWrite(run2, 22)
	w.Operations[0] = s.invoiceWrite(run2, 21).Operations[0]
	s.publish(w)
	if r := s.waitRun(run2); r.Status != store.RunSucceeded {
		t.Fatalf("second run %+v", r)
	}
	if n := s.posts("contacts"); n != 1 {
		t.Fatalf("%d contact POSTs, want 1", n)
	}
	want = map[string]int{"StartStageWithLinks": 2, "FinishRunWith": 2}
	if got := cs.counts(); !equalCounts(got, want) {
		t.Fatalf("store calls %v, want %v", got, want)
	}
}

// An ambiguous create is recorded at once, not with the run's conclusion: when
// the conclusion is lost, the next delivery still reads it and looks the
// documents up instead of POSTing them again (which after Sage's 7-day
// idempotency window would create them twice).
func TestAmbiguousCreateIsRecordedBeforeTheConclusion(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	if err := s.sim.SetFaults(sagesim.Faults{CommitThenDropRate: 1}); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{failFinish: 1}
	s.startCounted(s.config(), cs)
	run := s.newRun("invoice.created", 23)
	if _, err := s.st.StartRunFrom(t.Context(), run, 1); err != nil {
		t.Fatal(err)
	}
	s.publish(s.invoiceWrite(run, 23))
	if r := s.waitRun(run); r.Status != store.RunSucceeded || r.Change != store.ChangeCreated {
		t.Fatalf("run %+v", r)
	}
	if n, m := s.posts("contacts"), s.posts("sales_invoices"); n != 1 || m != 1 {
		t.Fatalf("POSTs %d and %d: the retry must look the documents up, not POST them again", n, m)
	}
	c := cs.counts()
	if c["WriteJournal"] != 2 || c["FinishRunWith"] != 2 || c["Attempts"] != 1 {
		t.Fatalf("store calls %v: want two checkpoints (one per ambiguous POST), a lost conclusion, one history read", c)
	}
	for _, j := range cs.journals {
		if last := j.Attempts[len(j.Attempts)-1]; last.Outcome != "ambiguous" {
			t.Fatalf("a checkpoint ended with %+v, not the ambiguous create", last)
		}
	}
	var outcomes []string
	for _, a := range s.attempts(run) {
		outcomes = append(outcomes, a.Method+" "+a.Path+" "+a.Outcome)
	}
	// The first delivery's ambiguous POSTs, each checkpointed with what came
	// before it (so the contact's lookup and link too); the invoice's lookup
	// was lost with the conclusion, and the second delivery, which knows the
	// contact, repeats it.
	want := []string{"POST /contacts ambiguous", "GET /contacts?search=M23 resolved",
		"POST /sales_invoices ambiguous", "GET /sales_invoices?search=INV23 resolved"}
	if !slices.Equal(outcomes, want) {
		t.Fatalf("attempts %q, want %q", outcomes, want)
	}
}

// The last allowed delivery records each link as soon as its document
// exists: no redelivery follows a crash in it.
func TestLastDeliveryRecordsLinksAtOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	if err := s.sim.SetFaults(sagesim.Faults{ServerErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{}
	cfg := s.config()
	cfg.MaxDeliver = 2
	s.startCounted(cfg, cs)
	run := s.newRun("invoice.created", 24)
	s.publish(s.invoiceWrite(run, 24))
	devtest.Eventually(t, "the first delivery fails and notes its error", func() bool { return cs.counts()["NoteRunErrorWith"] == 1 })
	if err := s.sim.SetFaults(sagesim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if r := s.waitRun(run); r.Status != store.RunSucceeded {
		t.Fatalf("run %+v", r)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	// The first delivery's 500 on POST /contacts is ambiguous: checkpointed
	// (no link). The last delivery checkpoints each link on its own.
	var linked [][]string
	for _, j := range cs.journals {
		if len(j.Links) == 0 {
			continue
		}
		var kinds []string
		for _, l := range j.Links {
			kinds = append(kinds, l.Kind)
		}
		linked = append(linked, kinds)
	}
	if len(linked) != 2 || !slices.Equal(linked[0], []string{"contact"}) || !slices.Equal(linked[1], []string{"invoice"}) {
		t.Fatalf("links checkpointed %v, want one checkpoint per created document", linked)
	}
}

func equalCounts(got, want map[string]int) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
