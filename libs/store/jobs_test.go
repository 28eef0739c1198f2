package store_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/store"
)

// Scheduled jobs: only tenants with an active Sage binding are scheduled; a
// due job is claimed by one of several concurrent claimers; a claim that is
// never finished (its replica died) is claimable again once its lease ends;
// finishing sets the next due time and releases the lease.
func TestJobsAreClaimedOnceAndLeasesEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := open(t)
	for _, id := range []string{"t2", "t3"} {
		if _, err := st.CreateTenant(ctx, id, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"t1", "t2"} {
		if err := st.SetSageStatus(ctx, id, store.StatusActive, "biz-"+id); err != nil {
			t.Fatal(err)
		}
	}
	// t3 has no Sage connection: not scheduled.
	if err := st.EnsureJobs(ctx, store.JobRefData, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Job(ctx, "t3", store.JobRefData); err == nil {
		t.Fatal("a tenant without Sage was scheduled")
	}
	exec := func(q string) {
		t.Helper()
		if _, err := st.Pool().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE tenant_jobs SET due_at = now() - interval '1 second'`)

	var mu sync.Mutex
	var claimed []string
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ids, err := st.ClaimDueJobs(ctx, store.JobRefData, time.Minute, 10)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			claimed = append(claimed, ids...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(claimed)
	if !slices.Equal(claimed, []string{"t1", "t2"}) {
		t.Fatalf("eight concurrent claimers got %v, want t1 and t2 once each", claimed)
	}
	// Re-scheduling keeps the schedule of existing rows.
	if err := st.EnsureJobs(ctx, store.JobRefData, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if ids, _ := st.ClaimDueJobs(ctx, store.JobRefData, time.Minute, 10); len(ids) != 0 {
		t.Fatalf("leased jobs claimed again: %v", ids)
	}
	// t1's replica finishes; t2's died holding its lease.
	if err := st.FinishJob(ctx, "t1", store.JobRefData, 24*time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	if j, _ := st.Job(ctx, "t1", store.JobRefData); j.LastOKAt == nil || time.Until(j.DueAt) < 23*time.Hour || j.LeaseUntil.After(time.Now()) {
		t.Fatalf("t1 after finishing: %+v", j)
	}
	exec(`UPDATE tenant_jobs SET lease_until = now() - interval '1 second' WHERE tenant_id = 't2'`)
	if ids, _ := st.ClaimDueJobs(ctx, store.JobRefData, time.Minute, 10); !slices.Equal(ids, []string{"t2"}) {
		t.Fatalf("after t2's lease ended: %v, want t2 again", ids)
	}
	if err := st.FinishJob(ctx, "t2", store.JobRefData, time.Hour, "Sage answered 503"); err != nil {
		t.Fatal(err)
	}
	if j, _ := st.Job(ctx, "t2", store.JobRefData); j.LastOKAt != nil || j.LastError != "Sage answered 503" {
		t.Fatalf("t2 after a failure: %+v", j)
	}
}
