package store

import (
	"context"
	"time"
)

// TenantActivity is what the metrics report of one tenant: its bindings'
// statuses, its unfinished runs and when it last sent an event.
type TenantActivity struct {
	TenantID      string
	MagentoStatus string // magento_connection_status
	SageStatus    string
	CreatedAt     time.Time
	// Unfinished counts its runs still pending or running: events accepted
	// and not yet synced, skipped or failed.
	Unfinished int64
	// LastRunAt is when ingest last accepted a delivery of the tenant: its
	// newest run's creation, or the last delivery recorded in shop_activity
	// (a repeat of a live run creates no run), whichever is later; zero when
	// it has neither.
	LastRunAt time.Time
}

// TenantActivity reads every tenant's activity: one row per tenant, each
// figure read through an index (sync_runs_tenant_status,
// sync_runs_tenant_created), never a scan of the runs.
func (s *Store) TenantActivity(ctx context.Context) ([]TenantActivity, error) {
	rows, err := s.pool.Query(ctx, `SELECT t.tenant_id, b.magento_connection_status, b.status, t.created_at,
		(SELECT count(*) FROM sync_runs r WHERE r.tenant_id = t.tenant_id AND r.status IN ('pending', 'running')),
		GREATEST((SELECT max(r.created_at) FROM sync_runs r WHERE r.tenant_id = t.tenant_id),
			(SELECT a.last_webhook_at FROM shop_activity a WHERE a.tenant_id = t.tenant_id))
		FROM tenants t JOIN bindings b USING (tenant_id) ORDER BY t.tenant_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TenantActivity
	for rows.Next() {
		var a TenantActivity
		var last *time.Time
		if err := rows.Scan(&a.TenantID, &a.MagentoStatus, &a.SageStatus, &a.CreatedAt, &a.Unfinished, &last); err != nil {
			return nil, err
		}
		if last != nil {
			a.LastRunAt = *last
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
