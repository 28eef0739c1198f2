package store

import (
	"context"
	"time"
)

// Scheduled per-tenant jobs of the admin service (table tenant_jobs).
const (
	JobRefData   = "refdata"   // the 24-hour refresh of the Sage reference data
	JobReconcile = "reconcile" // the reconciliation pass
)

// EnsureJobs gives every tenant whose Sage binding is active a row for job,
// first due one interval from now, ±10 % (tenants connected together, or all
// of them when the job is new, come due spread over a fifth of the interval).
// Existing rows keep their schedule.
func (s *Store) EnsureJobs(ctx context.Context, job string, every time.Duration) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO tenant_jobs (tenant_id, job, due_at)
		SELECT tenant_id, $1, now() + (0.9 + 0.2 * random()) * $2 * interval '1 millisecond'
		FROM bindings WHERE status = 'active' AND sage_business_id <> ''
		ON CONFLICT (tenant_id, job) DO NOTHING`, job, every.Milliseconds())
	return err
}

// ClaimDueJobs claims up to limit tenants whose job is due and not leased by
// another replica, leasing each for lease, and returns their ids, the
// longest-overdue first. One UPDATE over rows locked with SKIP LOCKED: two
// replicas claiming at once get disjoint tenants, and a claim outlives no
// replica by more than its lease.
func (s *Store) ClaimDueJobs(ctx context.Context, job string, lease time.Duration, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `UPDATE tenant_jobs j SET lease_until = now() + $2 * interval '1 millisecond', last_started_at = now()
		FROM (SELECT tenant_id FROM tenant_jobs
		      WHERE job = $1 AND due_at <= now() AND lease_until < now()
		      ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
		WHERE j.job = $1 AND j.tenant_id = due.tenant_id
		RETURNING j.tenant_id`, job, lease.Milliseconds(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// FinishJob releases a claim and sets when the job is next due: after ok, or
// after a failure (errMsg is kept as last_error).
func (s *Store) FinishJob(ctx context.Context, tenantID, job string, next time.Duration, errMsg string) error {
	_, err := s.pool.Exec(ctx, `UPDATE tenant_jobs SET due_at = now() + $3 * interval '1 millisecond', lease_until = '-infinity',
		last_ok_at = CASE WHEN $4 = '' THEN now() ELSE last_ok_at END, last_error = $4
		WHERE tenant_id = $1 AND job = $2`, tenantID, job, next.Milliseconds(), errMsg)
	return err
}

// JobState is one tenant's schedule of one job.
type JobState struct {
	DueAt, LeaseUntil time.Time
	LastStartedAt     *time.Time
	LastOKAt          *time.Time
	LastError         string
}

// Job returns the tenant's schedule of job (a released lease reads as the
// Unix epoch); ErrNotFound when it has none.
func (s *Store) Job(ctx context.Context, tenantID, job string) (JobState, error) {
	var j JobState
	err := s.pool.QueryRow(ctx, `SELECT due_at, GREATEST(lease_until, 'epoch'), last_started_at, last_ok_at, last_error FROM tenant_jobs
		WHERE tenant_id = $1 AND job = $2`, tenantID, job).Scan(&j.DueAt, &j.LeaseUntil, &j.LastStartedAt, &j.LastOKAt, &j.LastError)
	return j, notFound(err, "tenant_jobs "+tenantID+" "+job)
}
