package admin

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/ledgersync/ledger/libs/sage/budget"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Scheduled per-tenant work: the refresh of the Sage reference data every
// RefDataEvery (the 24 hours the design promises) and a reconciliation pass
// every ReconcileEvery, each with ±10 % jitter.
//
// One runner per tenant and job, however many admin replicas run: each
// replica looks for due jobs every JobScan and claims them in Postgres with
// one UPDATE over rows locked FOR UPDATE SKIP LOCKED that moves the row's
// lease forward (store.ClaimDueJobs). That is the simplest correct choice
// here: nothing is held while the job talks to Sage (an advisory lock would
// pin a connection or a transaction for minutes), replicas share the tenants
// instead of one replica doing all of them (a NATS KV lease would elect one
// runner), a replica that dies mid-job gives the tenant up when the lease
// ends, and the jittered next due time lives in the same row.

// JobStore is what the scheduled jobs need from libs/store.
type JobStore interface {
	EnsureJobs(ctx context.Context, job string, every time.Duration) error
	ClaimDueJobs(ctx context.Context, job string, lease time.Duration, limit int) ([]string, error)
	FinishJob(ctx context.Context, tenantID, job string, next time.Duration, errMsg string) error
}

// Scheduling constants.
const (
	// jobLease bounds one job's run; another replica may take the tenant
	// over once it ends.
	jobLease = 30 * time.Minute
	// jobsPerScan is how many tenants of one job a replica claims per scan.
	jobsPerScan = 10
	// jobRetry is how soon a failed job runs again (at most its interval).
	jobRetry = time.Hour
	// jobJitter spreads each next run by ±10 %.
	jobJitter = 0.1
)

// job is one kind of scheduled work.
type job struct {
	name  string
	every time.Duration // negative: off
	run   func(ctx context.Context, tenantID string) error
}

func (s *Service) jobs() []job {
	return []job{
		{name: store.JobRefData, every: s.cfg.RefDataEvery, run: func(ctx context.Context, tenantID string) error {
			_, err := s.RefreshReferenceData(ctx, &ledgerv1.RefreshReferenceDataRequest{TenantId: tenantID})
			return err
		}},
		{name: store.JobReconcile, every: s.cfg.ReconcileEvery, run: func(ctx context.Context, tenantID string) error {
			_, err := s.reconcile(ctx, tenantID, nil)
			return err
		}},
	}
}

// RunJobs runs the scheduled jobs until ctx ends: it first takes a seat among
// the Sage callers sharing the app-wide limits (when the service has NATS),
// then runs RunDueJobs every JobScan.
func (s *Service) RunJobs(ctx context.Context) error {
	if s.js != nil {
		fleet, err := budget.JoinFleet(ctx, s.js, s.budget, callerID(), s.cfg.NATSReplicas, s.log)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Scheduled work can wait for NATS; the process keeps serving.
			s.log.WarnContext(ctx, "could not join the Sage callers sharing the app limits; this process counts its own calls", "err", err)
		} else {
			done := make(chan struct{})
			go func() { defer close(done); fleet.Run(ctx) }()
			defer func() { <-done }()
		}
	}
	t := time.NewTicker(s.cfg.JobScan)
	defer t.Stop()
	for {
		s.RunDueJobs(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.budget.Forget()
		}
	}
}

// RunDueJobs gives every tenant with an active Sage binding its schedule, then
// claims and runs the jobs due now, one after the other.
func (s *Service) RunDueJobs(ctx context.Context) {
	for _, j := range s.jobs() {
		if j.every < 0 {
			continue
		}
		if err := s.st.EnsureJobs(ctx, j.name, j.every); err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "scheduling jobs failed; the next scan retries", "job", j.name, "err", err)
			}
			continue
		}
		ids, err := s.st.ClaimDueJobs(ctx, j.name, jobLease, jobsPerScan)
		if err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "claiming due jobs failed; the next scan retries", "job", j.name, "err", err)
			}
			continue
		}
		for _, id := range ids {
			s.runJob(ctx, j, id)
		}
	}
}

func (s *Service) runJob(ctx context.Context, j job, tenantID string) {
	jctx, cancel := context.WithTimeout(ctx, jobLease)
	start := time.Now()
	err := j.run(jctx, tenantID)
	cancel()
	next, msg := jittered(j.every), ""
	log := s.log.With("job", j.name, "tenant_id", tenantID, "took", time.Since(start).Round(time.Millisecond))
	switch {
	case err != nil && ctx.Err() != nil:
		// Stopped by a shutdown: due again at once, for whichever replica is next.
		next, msg = 0, "stopped by a shutdown: "+err.Error()
		log.InfoContext(ctx, "scheduled job stopped by the shutdown; released")
	case err != nil:
		next, msg = jittered(min(j.every, jobRetry)), err.Error()
		log.WarnContext(ctx, "scheduled job failed; it runs again later", "next_in", next.Round(time.Second), "err", err)
	default:
		log.InfoContext(ctx, "scheduled job done", "next_in", next.Round(time.Second))
	}
	// Released even when the service is stopping: the lease would otherwise
	// keep the tenant from every replica until it ends.
	if err := s.st.FinishJob(context.WithoutCancel(ctx), tenantID, j.name, next, msg); err != nil {
		log.WarnContext(ctx, "recording the job's outcome failed; its lease ends by itself", "err", err)
	}
}

// jittered spreads d by ±jobJitter.
func jittered(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (1 - jobJitter + 2*jobJitter*rand.Float64()))
}
