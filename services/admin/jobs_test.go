package admin_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/sage/budget"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/admin"
)

// Two admin replicas scanning at the same moment run each tenant's due jobs
// once: the reference-data refresh (one GET /tax_rates per tenant) and the
// reconciliation pass (a mark per tenant); each job is then due again about
// a day later (±10 %), and a job leased by a replica is left alone.
func TestScheduledJobsRunOncePerTenantAcrossReplicas(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *admin.Config) { c.SageRatePerMinute = 60_000 })
	for _, id := range []string{"acme", "beta"} {
		h.createTenant(t, id)
		h.connectSage(t, id)
	}
	replica, err := admin.New(h.svc.Config(), h.st, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	exec := func(q string) {
		t.Helper()
		if _, err := h.st.Pool().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// The first scan schedules both tenants a day from now; make them due.
	h.svc.RunDueJobs(ctx)
	if j, err := h.st.Job(ctx, "acme", store.JobRefData); err != nil || time.Until(j.DueAt) < 21*time.Hour || j.LastStartedAt != nil {
		t.Fatalf("first schedule: %+v %v, want due about a day from now (Sage's connection just fetched the data)", j, err)
	}
	exec(`UPDATE tenant_jobs SET due_at = now() - interval '1 second'`)
	// A tenant whose job another replica holds is not taken.
	exec(`INSERT INTO tenants (tenant_id) VALUES ('held');
		INSERT INTO tenant_jobs (tenant_id, job, due_at, lease_until) VALUES ('held', 'refdata', now() - interval '1 hour', now() + interval '10 minutes')`)
	taxRates := func() int { return h.sage.CallCount("GET /v3.1/tax_rates", 200) }
	before := taxRates()

	var wg sync.WaitGroup
	for _, svc := range []*admin.Service{h.svc, replica} {
		wg.Go(func() { svc.RunDueJobs(context.WithoutCancel(ctx)) })
	}
	wg.Wait()

	if got := taxRates() - before; got != 2 {
		t.Fatalf("reference data fetched %d times by two replicas for two tenants, want 2", got)
	}
	for _, id := range []string{"acme", "beta"} {
		for _, job := range []string{store.JobRefData, store.JobReconcile} {
			j, err := h.st.Job(ctx, id, job)
			if err != nil {
				t.Fatal(err)
			}
			next := time.Until(j.DueAt)
			if j.LastOKAt == nil || j.LastError != "" || next < 21*time.Hour || next > 27*time.Hour || j.LeaseUntil.After(time.Now()) {
				t.Errorf("%s %s after its run: next in %s, last ok %v, error %q, lease until %v", id, job, next, j.LastOKAt, j.LastError, j.LeaseUntil)
			}
		}
		if _, err := h.st.ReconcileMark(ctx, id); err != nil {
			t.Errorf("%s: no reconciliation mark after the scheduled pass: %v", id, err)
		}
	}
	if j, _ := h.st.Job(ctx, "held", store.JobRefData); j.LastStartedAt != nil {
		t.Errorf("the job leased by another replica was run: %+v", j)
	}
}

// With NATS, the jobs component takes a seat among the Sage callers sharing
// the app-wide limits (the writers' LEDGER_WRITERS bucket), so its calls are
// counted in the shared daily budget (LEDGER_APP_BUDGET), and gives the seat
// up when it stops.
func TestScheduledJobsShareTheWritersBudget(t *testing.T) {
	t.Parallel()
	h := newBusHarness(t)
	h.createTenant(t, "acme")
	h.connectSage(t, "acme")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.svc.RunJobs(ctx) }()

	seats := func() []string {
		kv, err := h.js.KeyValue(t.Context(), budget.WritersBucket)
		if err != nil {
			return nil
		}
		keys, _ := kv.Keys(t.Context())
		return keys
	}
	devtest.Eventually(t, "the admin's seat among the Sage callers", func() bool {
		return slices.ContainsFunc(seats(), func(k string) bool { return strings.HasPrefix(k, "writer.admin-") })
	})
	kv, err := h.js.KeyValue(t.Context(), budget.BudgetBucket)
	if err != nil {
		t.Fatal(err)
	}
	// The seat is written a moment before the budget starts counting through
	// it: a refresh in between is counted locally, the next one is shared.
	devtest.Eventually(t, "a refresh counted in the shared daily budget", func() bool {
		if _, err := h.client.RefreshReferenceData(h.ctx(t), &ledgerv1.RefreshReferenceDataRequest{TenantId: "acme"}); err != nil {
			t.Fatal(err)
		}
		day, err := kv.Get(t.Context(), "day."+time.Now().UTC().Format("20060102"))
		return err == nil && string(day.Value()) == strconv.Itoa(budget.DayBlock)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunJobs: %v", err)
	}
	if s := seats(); slices.ContainsFunc(s, func(k string) bool { return strings.HasPrefix(k, "writer.admin-") }) {
		t.Fatalf("seat kept after stopping: %v", s)
	}
}
