package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// BackfillKey names one sync-state backfill: a tenant, the entity types it
// walks and the lower bound on finished_at. Two backfills with the same key
// share a cursor, so the second one resumes where the first stopped.
type BackfillKey struct {
	TenantID    string
	EntityTypes []string
	// Since is the lower bound on finished_at (inclusive); zero walks every run.
	Since time.Time
}

// types is the key's entity types sorted, deduplicated and comma-joined.
func (k BackfillKey) types() []string {
	ts := slices.Clone(k.EntityTypes)
	slices.Sort(ts)
	return slices.Compact(ts)
}

func (k BackfillKey) typesKey() string { return strings.Join(k.types(), ",") }

// since is the stored lower bound: the Unix epoch when none was given (no run
// finished before it).
func (k BackfillKey) since() time.Time {
	if k.Since.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return k.Since.UTC().Truncate(time.Microsecond)
}

// nilRunID sorts before every run id: the keyset start.
const nilRunID = "00000000-0000-0000-0000-000000000000"

// BackfillCursor is how far a backfill got: the keyset position of the last
// run it published, and its running counts.
type BackfillCursor struct {
	AfterFinishedAt time.Time
	// AfterRunID is "" before the first batch.
	AfterRunID  string
	Pushed      int64
	Skipped     int64
	StartedAt   time.Time
	UpdatedAt   time.Time
	CompletedAt *time.Time
}

// Resumed reports whether the cursor carries progress of an earlier,
// interrupted backfill.
func (c BackfillCursor) Resumed() bool { return c.AfterRunID != "" && c.CompletedAt == nil }

// position returns the keyset position to continue after.
func (c BackfillCursor) position(k BackfillKey) (time.Time, string) {
	if c.AfterRunID == "" {
		return k.since(), nilRunID
	}
	return c.AfterFinishedAt, c.AfterRunID
}

func scanCursor(row pgx.Row) (BackfillCursor, error) {
	var c BackfillCursor
	var after *time.Time
	var runID *string
	err := row.Scan(&after, &runID, &c.Pushed, &c.Skipped, &c.StartedAt, &c.UpdatedAt, &c.CompletedAt)
	if after != nil {
		c.AfterFinishedAt = *after
	}
	if runID != nil {
		c.AfterRunID = *runID
	}
	return c, err
}

const cursorCols = `after_finished_at, after_run_id::text, pushed, skipped, started_at, updated_at, completed_at`

// BeginBackfill returns the cursor a backfill continues from: the stored one
// when an earlier backfill with the same key was interrupted, else a fresh one
// (a new key, or one whose last backfill completed: it starts over).
func (s *Store) BeginBackfill(ctx context.Context, k BackfillKey) (BackfillCursor, error) {
	return scanCursor(s.pool.QueryRow(ctx, `INSERT INTO backfill_cursors (tenant_id, entity_types, since)
		VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, entity_types, since) DO UPDATE SET
			after_finished_at = CASE WHEN backfill_cursors.completed_at IS NULL THEN backfill_cursors.after_finished_at END,
			after_run_id = CASE WHEN backfill_cursors.completed_at IS NULL THEN backfill_cursors.after_run_id END,
			pushed = CASE WHEN backfill_cursors.completed_at IS NULL THEN backfill_cursors.pushed ELSE 0 END,
			skipped = CASE WHEN backfill_cursors.completed_at IS NULL THEN backfill_cursors.skipped ELSE 0 END,
			started_at = CASE WHEN backfill_cursors.completed_at IS NULL THEN backfill_cursors.started_at ELSE now() END,
			completed_at = NULL, updated_at = now()
		RETURNING `+cursorCols, k.TenantID, k.typesKey(), k.since()))
}

// PeekBackfill returns the stored cursor without changing it (a dry run);
// ok is false when no backfill with this key ever ran.
func (s *Store) PeekBackfill(ctx context.Context, k BackfillKey) (c BackfillCursor, ok bool, err error) {
	c, err = scanCursor(s.pool.QueryRow(ctx, `SELECT `+cursorCols+` FROM backfill_cursors
		WHERE tenant_id = $1 AND entity_types = $2 AND since = $3`, k.TenantID, k.typesKey(), k.since()))
	if errors.Is(err, pgx.ErrNoRows) {
		return BackfillCursor{}, false, nil
	}
	return c, err == nil, err
}

// SaveBackfill records a backfill's progress after a batch was published; with
// completed it also marks the walk finished.
func (s *Store) SaveBackfill(ctx context.Context, k BackfillKey, c BackfillCursor, completed bool) error {
	var after *time.Time
	var runID *string
	if c.AfterRunID != "" {
		after, runID = &c.AfterFinishedAt, &c.AfterRunID
	}
	return s.execOne(ctx, `UPDATE backfill_cursors SET after_finished_at = $4, after_run_id = $5::uuid,
			pushed = $6, skipped = $7, updated_at = now(),
			completed_at = CASE WHEN $8 THEN now() END
		WHERE tenant_id = $1 AND entity_types = $2 AND since = $3`, "backfill cursor",
		k.TenantID, k.typesKey(), k.since(), after, runID, c.Pushed, c.Skipped, completed)
}

// CountBackfill counts the succeeded runs a backfill walks: all of them, and
// those after the cursor (still to do).
func (s *Store) CountBackfill(ctx context.Context, k BackfillKey, c BackfillCursor) (total, remaining int64, err error) {
	at, id := c.position(k)
	err = s.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE (finished_at, sync_run_id) > ($4, $5::uuid))
		FROM sync_runs
		WHERE tenant_id = $1 AND status = 'succeeded' AND entity_type = ANY($2) AND finished_at >= $3`,
		k.TenantID, k.types(), k.since(), at, id).Scan(&total, &remaining)
	return total, remaining, err
}

// BackfillPage returns up to limit succeeded runs after the cursor in
// (finished_at, sync_run_id) order (a keyset walk over sync_runs_finished).
func (s *Store) BackfillPage(ctx context.Context, k BackfillKey, c BackfillCursor, limit int) ([]Run, error) {
	at, id := c.position(k)
	// Planned per call (QueryExecModeExec), never from a plan cached while the
	// table was small: a stale generic plan turns the keyset walk quadratic.
	rows, err := s.pool.Query(ctx, `SELECT `+runCols+` FROM sync_runs
		WHERE tenant_id = $1 AND status = 'succeeded' AND entity_type = ANY($2) AND finished_at >= $3
			AND (finished_at, sync_run_id) > ($4, $5::uuid)
		ORDER BY finished_at, sync_run_id LIMIT $6`, pgx.QueryExecModeExec, k.TenantID, k.types(), k.since(), at, id, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]Run, 0, limit)
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SyncStatesDelivered counts the runs among runIDs whose state Magento has
// confirmed at or after since: the callback mark of their entity was written
// then for this result, or a newer result superseded it (statecallback never
// sends an older result after a newer one).
func (s *Store) SyncStatesDelivered(ctx context.Context, runIDs []string, since time.Time) (int, error) {
	var n int
	// Planned per call (QueryExecModeExec): callback_marks grows from nothing
	// while a backfill runs, and a generic plan cached at the start (a scan of
	// a then tiny table) would cost a scan of every mark per poll.
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM sync_runs r
		JOIN callback_marks m ON m.tenant_id = r.tenant_id AND m.entity_type = r.entity_type
			AND m.magento_entity_id = r.magento_entity_id
		WHERE r.sync_run_id = ANY($1::uuid[])
			AND (m.finished_at > r.finished_at OR (m.finished_at = r.finished_at AND m.delivered_at >= $2))`,
		pgx.QueryExecModeExec, runIDs, since).Scan(&n)
	return n, err
}

// Now returns the database's clock (callback marks are stamped with it).
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := s.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&t)
	return t, err
}
