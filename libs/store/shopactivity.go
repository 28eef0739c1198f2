package store

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// ShopActivity is what ingest learned about a tenant's shop from its
// deliveries (table shop_activity; libs/shophealth judges it).
type ShopActivity struct {
	// LastWebhookAt is the newest accepted delivery: the later of what ingest
	// recorded (TouchShops) and the tenant's newest sync run. Zero: never.
	LastWebhookAt time.Time
	// UnauthorizedRecent counts the refusals RecordUnauthorized kept that are
	// within their window now and after LastWebhookAt.
	UnauthorizedRecent int
	// LastUnauthorizedAt and LastUnauthorizedReason describe the newest
	// refusal recorded (zero and "" when none).
	LastUnauthorizedAt     time.Time
	LastUnauthorizedReason string
}

// TouchShops records, for each tenant in seen, that ingest accepted a
// delivery at that time. One statement for all of them; a time never moves
// backwards (replicas flush in any order) and a tenant that no longer exists
// is left out.
func (s *Store) TouchShops(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	// Rows are locked in one order whichever replica writes.
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range seen {
			if !yield(id) {
				return
			}
		}
	})
	ats := make([]time.Time, len(ids))
	for i, id := range ids {
		ats[i] = seen[id].UTC()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO shop_activity (tenant_id, last_webhook_at)
		SELECT u.id, u.at FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at)
		JOIN tenants t ON t.tenant_id = u.id ORDER BY u.id
		ON CONFLICT (tenant_id) DO UPDATE SET
			last_webhook_at = GREATEST(shop_activity.last_webhook_at, EXCLUDED.last_webhook_at), updated_at = now()`, ids, ats)
	if err != nil {
		return fmt.Errorf("store: recording shop activity: %w", err)
	}
	return nil
}

// Refusal is a delivery ingest refused as unauthorized that looked like the
// shop's own.
type Refusal struct {
	TenantID string
	At       time.Time
	Reason   string // safe to show: never a key or a token
	// Window is how far back refusals count; Keep how many are kept (the
	// drift threshold: more are never needed).
	Window time.Duration
	Keep   int
}

// RecordUnauthorized records r and returns how many of the tenant's kept
// refusals, r included, fall within r.Window of r.At and after the last
// accepted delivery TouchShops recorded. It is one statement (row-locked), so
// concurrent refusals on several replicas count each other.
func (s *Store) RecordUnauthorized(ctx context.Context, r Refusal) (int, error) {
	if r.Keep < 1 || r.Window <= 0 {
		return 0, fmt.Errorf("store: RecordUnauthorized needs Keep ≥ 1 and a positive Window, got %d and %s", r.Keep, r.Window)
	}
	var n int
	err := s.pool.QueryRow(ctx, `INSERT INTO shop_activity AS a
			(tenant_id, unauthorized_at, unauthorized_window, last_unauthorized_at, last_unauthorized_reason)
		VALUES ($1, ARRAY[$2::timestamptz], $3 * interval '1 millisecond', $2, $4)
		ON CONFLICT (tenant_id) DO UPDATE SET
			unauthorized_at = ARRAY(SELECT t FROM unnest(a.unauthorized_at || $2::timestamptz) AS t
				WHERE t > $2::timestamptz - $3 * interval '1 millisecond'
				AND t > coalesce(a.last_webhook_at, '-infinity'::timestamptz)
				ORDER BY t DESC LIMIT $5),
			unauthorized_window = $3 * interval '1 millisecond',
			last_unauthorized_at = GREATEST(a.last_unauthorized_at, $2),
			last_unauthorized_reason = $4, updated_at = now()
		RETURNING cardinality(a.unauthorized_at)`,
		r.TenantID, r.At.UTC(), r.Window.Milliseconds(), r.Reason, r.Keep).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: recording an unauthorized delivery of tenant %s: %w", r.TenantID, notFound(err, "tenant "+r.TenantID))
	}
	return n, nil
}

// ShopActivity returns what is known of tenant's shop; a tenant without a row
// has the zero value but for its newest run.
func (s *Store) ShopActivity(ctx context.Context, tenantID string) (ShopActivity, error) {
	var (
		out        ShopActivity
		last, unau *time.Time
		reason     *string
	)
	err := s.pool.QueryRow(ctx, `SELECT
			GREATEST(a.last_webhook_at, (SELECT max(r.created_at) FROM sync_runs r WHERE r.tenant_id = $1)),
			coalesce((SELECT count(*) FROM unnest(a.unauthorized_at) AS t
				WHERE t > now() - a.unauthorized_window AND t > coalesce(a.last_webhook_at, '-infinity'::timestamptz)), 0),
			a.last_unauthorized_at, a.last_unauthorized_reason
		FROM (SELECT 1) AS one LEFT JOIN shop_activity a ON a.tenant_id = $1`, tenantID).
		Scan(&last, &out.UnauthorizedRecent, &unau, &reason)
	if err != nil {
		return ShopActivity{}, fmt.Errorf("store: reading the shop activity of tenant %s: %w", tenantID, err)
	}
	if last != nil {
		out.LastWebhookAt = *last
	}
	if unau != nil {
		out.LastUnauthorizedAt = *unau
	}
	if reason != nil {
		out.LastUnauthorizedReason = *reason
	}
	return out, nil
}
