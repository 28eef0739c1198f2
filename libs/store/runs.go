package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Run statuses.
const (
	RunPending   = "pending"
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunSkipped   = "skipped"
	RunFailed    = "failed"
)

// Delivery is one webhook delivery as ingest sees it. The envelope fields are
// kept on the run so it can be re-run without the shop.
type Delivery struct {
	TenantID        string
	IdempotencyKey  string
	Event           string
	EntityType      string
	MagentoEntityID int64
	WebsiteID       int64
	StoreID         int64
	OccurredAt      string
	Payload         []byte // the envelope's payload JSON; nil when absent
	// TraceID and SpanID are the trace context of the request that delivered
	// it (hex; empty when none), kept on the run.
	TraceID, SpanID string
}

// Acceptance says what ingest must do with a delivery.
type Acceptance struct {
	RunID string
	// Duplicate: the key was already accepted and its run is pending, running or
	// succeeded within the window. Answer 2xx with RunID and publish nothing.
	Duplicate bool
}

// AcceptWebhook records a delivery and decides whether it is a repeat. A key
// whose run is running or succeeded within window is a repeat (Duplicate). A
// key whose run is still pending returns that run to publish (again): it may
// never have been published (the process died between commit and publish),
// and when it was, JetStream keeps one copy within bus.DedupeWindow. A key
// whose run failed or was skipped, or that is older than window, starts a new
// run (the shop re-sends keys on purpose). Nothing records the publish itself
// (webhook_keys.published_at is no longer written).
func (s *Store) AcceptWebhook(ctx context.Context, d Delivery, window time.Duration) (Acceptance, error) {
	// A key seen for the first time (nearly every delivery) takes one
	// statement: the key and its run inserted together, or neither. A key
	// already there is decided in a transaction below.
	newID := uuid.NewString()
	tag, err := s.pool.Exec(ctx, `WITH k AS (
			INSERT INTO webhook_keys (tenant_id, idempotency_key, sync_run_id) VALUES ($2, $4, $1)
			ON CONFLICT DO NOTHING RETURNING sync_run_id)
		`+insertRunSQL+` SELECT `+insertRunValues+` FROM k`, d.runArgs(newID)...)
	if err != nil {
		return Acceptance{}, fmt.Errorf("store: accept webhook: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return Acceptance{RunID: newID}, nil
	}
	var acc Acceptance
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for range 2 {
			var runID string
			var createdAt time.Time
			var status *string
			err := tx.QueryRow(ctx, `SELECT k.sync_run_id::text, k.created_at, r.status
				FROM webhook_keys k LEFT JOIN sync_runs r USING (sync_run_id)
				WHERE k.tenant_id = $1 AND k.idempotency_key = $2 FOR UPDATE OF k`,
				d.TenantID, d.IdempotencyKey).Scan(&runID, &createdAt, &status)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				newID := uuid.NewString()
				tag, err := tx.Exec(ctx, `INSERT INTO webhook_keys (tenant_id, idempotency_key, sync_run_id)
					VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, d.TenantID, d.IdempotencyKey, newID)
				if err != nil {
					return err
				}
				if tag.RowsAffected() == 0 {
					continue // a concurrent delivery inserted it; read theirs
				}
				acc = Acceptance{RunID: newID}
				return insertRun(ctx, tx, newID, d)
			case err != nil:
				return err
			}
			switch {
			case status != nil && *status == RunPending:
				// Not consumed yet, and maybe never published (the process
				// died before the publish): publish it (again). Within
				// bus.DedupeWindow JetStream keeps one copy (the publish
				// reports a duplicate); later, the mapper takes a second
				// message of a run as a redelivery.
				acc = Acceptance{RunID: runID}
				return nil
			case status != nil && (*status == RunRunning || *status == RunSucceeded) && time.Since(createdAt) < window:
				acc = Acceptance{RunID: runID, Duplicate: true}
				return nil
			}
			newID := uuid.NewString()
			if _, err := tx.Exec(ctx, `UPDATE webhook_keys SET sync_run_id = $3, published_at = NULL, created_at = now()
				WHERE tenant_id = $1 AND idempotency_key = $2`, d.TenantID, d.IdempotencyKey, newID); err != nil {
				return err
			}
			acc = Acceptance{RunID: newID}
			return insertRun(ctx, tx, newID, d)
		}
		return errors.New("store: webhook key contention did not settle")
	})
	if err != nil {
		return Acceptance{}, fmt.Errorf("store: accept webhook: %w", err)
	}
	return acc, nil
}

func insertRun(ctx context.Context, tx pgx.Tx, id string, d Delivery) error {
	_, err := tx.Exec(ctx, insertRunSQL+` VALUES (`+insertRunValues+`)`, d.runArgs(id)...)
	return err
}

// insertRunSQL and insertRunValues insert a delivery's run; runArgs are
// their arguments.
const (
	insertRunSQL = `INSERT INTO sync_runs (sync_run_id, tenant_id, event, idempotency_key, entity_type, magento_entity_id,
			website_id, store_id, occurred_at, payload, trace_id, trace_span_id)`
	insertRunValues = `$1::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, NULLIF($11, ''), NULLIF($12, '')`
)

func (d Delivery) runArgs(id string) []any {
	var payload any
	if len(d.Payload) > 0 && json.Valid(d.Payload) {
		payload = string(d.Payload)
	}
	return []any{id, d.TenantID, d.Event, d.IdempotencyKey, d.EntityType, d.MagentoEntityID, d.WebsiteID, d.StoreID,
		d.OccurredAt, payload, d.TraceID, d.SpanID}
}

// ForgetWebhookKeys deletes the dedup keys older than age, which AcceptWebhook
// no longer treats as repeats (age is the dedupe window), in batches of at most
// 5,000 rows so no statement holds many locks for long. A key whose run is
// still pending is kept: its next delivery must publish that run, not start
// another (ingest's retention job, the only caller, runs it on a timer). It
// returns how many keys it deleted.
func (s *Store) ForgetWebhookKeys(ctx context.Context, age time.Duration) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM webhook_keys WHERE (tenant_id, idempotency_key) IN (
				SELECT k.tenant_id, k.idempotency_key FROM webhook_keys k
				WHERE k.created_at < now() - make_interval(secs => $1)
				AND NOT EXISTS (SELECT 1 FROM sync_runs r WHERE r.sync_run_id = k.sync_run_id AND r.status = 'pending')
				LIMIT $2)`, age.Seconds(), forgetBatch)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < forgetBatch {
			return total, nil
		}
	}
}

// forgetBatch is how many webhook keys one DELETE of ForgetWebhookKeys removes.
const forgetBatch = 5000

// Run is one sync run.
type Run struct {
	ID              string
	TenantID        string
	Event           string
	IdempotencyKey  string
	EntityType      string
	MagentoEntityID int64
	WebsiteID       int64
	StoreID         int64
	OccurredAt      string
	Payload         []byte
	Status          string
	SageID          string
	SkipReason      string
	ErrorClass      string
	ErrorCode       string
	LastError       string
	Attempts        int
	AppliedQuirks   []string
	CreatedAt       time.Time
	StartedAt       *time.Time
	FinishedAt      *time.Time
	// TraceID is the trace of the webhook that started the run (hex; empty
	// when it was accepted before tracing); TraceSpanID is the span that
	// accepted it, which an operator's retry links to.
	TraceID, TraceSpanID string
	// Change is what a succeeded run did in Sage (ChangeCreated,
	// ChangeUpdated, ChangeUnchanged); "" otherwise.
	Change string
}

// What a succeeded run did in Sage (Run.Change).
const (
	ChangeCreated   = "created"   // at least one document was created
	ChangeUpdated   = "updated"   // none created, at least one changed with PUT
	ChangeUnchanged = "unchanged" // no call: Sage already held what Ledger would send
)

// Terminal reports whether the run has finished.
func (r Run) Terminal() bool {
	return r.Status == RunSucceeded || r.Status == RunSkipped || r.Status == RunFailed
}

const runCols = `sync_run_id::text, tenant_id, event, idempotency_key, entity_type, magento_entity_id,
	website_id, store_id, occurred_at, COALESCE(payload::text, ''), status,
	sage_id, skip_reason, error_class, error_code, last_error, attempts, applied_quirks, created_at, started_at, finished_at,
	COALESCE(trace_id, ''), COALESCE(trace_span_id, ''), sage_change`

func scanRun(row pgx.Row) (Run, error) {
	var r Run
	var payload string
	err := row.Scan(runDest(&r, &payload)...)
	if payload != "" {
		r.Payload = []byte(payload)
	}
	return r, err
}

// runDest is where runCols scan into: r's fields, and payload for the
// payload's text.
func runDest(r *Run, payload *string) []any {
	return []any{&r.ID, &r.TenantID, &r.Event, &r.IdempotencyKey, &r.EntityType, &r.MagentoEntityID,
		&r.WebsiteID, &r.StoreID, &r.OccurredAt, payload, &r.Status,
		&r.SageID, &r.SkipReason, &r.ErrorClass, &r.ErrorCode, &r.LastError, &r.Attempts, &r.AppliedQuirks,
		&r.CreatedAt, &r.StartedAt, &r.FinishedAt, &r.TraceID, &r.TraceSpanID, &r.Change}
}

// ResetRun puts a finished run back to pending for an operator's retry: the
// sync is done again (idempotently, so nothing is duplicated in Sage) and its
// terminal mark and sync-state callback fire again with a new finished_at.
func (s *Store) ResetRun(ctx context.Context, id string) (Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, `UPDATE sync_runs SET status = 'pending', finished_at = NULL,
			skip_reason = '', error_class = '', error_code = '', last_error = '', sage_change = '', updated_at = now()
		WHERE sync_run_id = $1 RETURNING `+runCols, id))
	return r, notFound(err, "sync run "+id)
}

// Run returns one run or ErrNotFound.
func (s *Store) Run(ctx context.Context, id string) (Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runCols+` FROM sync_runs WHERE sync_run_id = $1`, id))
	return r, notFound(err, "sync run "+id)
}

// StartRun marks a run running and counts a processing attempt. A succeeded
// or skipped run is returned unchanged, so a redelivered message can re-publish
// its result without redoing work. A failed run starts again: its message only
// comes back when an operator replays its dead letter or retries it, after
// fixing the cause.
func (s *Store) StartRun(ctx context.Context, id string) (Run, error) {
	r, _, err := s.StartStage(ctx, id, "")
	return r, err
}

// StartStage is StartRun for one stage (sync_attempts.stage), which also
// reports whether the run's history already holds attempts of that stage: an
// earlier delivery's, or those of a run an operator retried. The same
// statement reads it, so a first delivery learns that it has no history to
// read without another round trip.
func (s *Store) StartStage(ctx context.Context, id, stage string) (Run, bool, error) {
	return scanStartStage(s.pool.QueryRow(ctx, startStageSQL, id, stage), id)
}

// StartStageWithLinks is StartStage and Xrefs(tenantID, keys) in one round
// trip and one transaction (the sage-writer's start: the run and every link
// its operations may have).
func (s *Store) StartStageWithLinks(ctx context.Context, id, stage, tenantID string, keys []XrefKey) (Run, bool, map[XrefKey]Xref, error) {
	b := &pgx.Batch{}
	st := startStageWithLinks{id: id, stage: stage, tenantID: tenantID, keys: keys}
	st.queue(b)
	br := s.pool.SendBatch(ctx, b)
	err := st.scan(br)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Run{}, false, nil, err
	}
	return st.run, st.earlier, st.links, nil
}

// startStageWithLinks is StartStageWithLinks's round trip, on the pool or in
// a Unit.
type startStageWithLinks struct {
	id, stage, tenantID string
	keys                []XrefKey
	run                 Run
	earlier             bool
	links               map[XrefKey]Xref
}

func (st *startStageWithLinks) queue(b *pgx.Batch) {
	b.Queue(startStageSQL, st.id, st.stage)
	b.Queue(xrefsSQL, xrefsArgs(st.tenantID, st.keys)...)
}

func (st *startStageWithLinks) scan(br pgx.BatchResults) error {
	var err error
	if st.run, st.earlier, err = scanStartStage(br.QueryRow(), st.id); err != nil {
		return err
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	st.links, err = scanXrefs(rows, st.tenantID, len(st.keys))
	return err
}

const startStageSQL = `UPDATE sync_runs SET
			finished_at = CASE WHEN status = 'failed' THEN NULL ELSE finished_at END,
			attempts = CASE WHEN status IN ('pending', 'running', 'failed') THEN attempts + 1 ELSE attempts END,
			status = CASE WHEN status IN ('pending', 'running', 'failed') THEN 'running' ELSE status END,
			started_at = COALESCE(started_at, now()),
			updated_at = now()
		WHERE sync_run_id = $1 RETURNING ` + runCols + `,
			EXISTS (SELECT 1 FROM sync_attempts a WHERE a.sync_run_id = sync_runs.sync_run_id AND a.stage = $2)`

func scanStartStage(row pgx.Row, id string) (Run, bool, error) {
	var r Run
	var payload string
	var earlier bool
	err := row.Scan(append(runDest(&r, &payload), &earlier)...)
	if payload != "" {
		r.Payload = []byte(payload)
	}
	return r, earlier, notFound(err, "sync run "+id)
}

// StartRunFrom is StartRun for the mapper, which knows the stream sequence of
// the OUTBOX message it handles. A failed run whose current attempt came from
// that same message (a redelivery after a crash between publishing and
// acknowledging) stays failed: only a new message restarts it. Every other
// start records seq as the attempt's source.
func (s *Store) StartRunFrom(ctx context.Context, id string, seq uint64) (Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, startRunFromSQL, id, int64(seq)))
	return r, notFound(err, "sync run "+id)
}

// startRunFromSQL is StartRunFrom's statement.
const startRunFromSQL = `UPDATE sync_runs SET ` + startFromSet + `
		WHERE sync_run_id = $1 RETURNING ` + runCols

// startFromSet is what StartRunFrom sets (with $2 the message's stream
// sequence). Every SET expression sees the row as it was, so "starts" is the
// same condition in each.
const startFromSet = `
			finished_at = CASE WHEN ` + startsFrom + ` THEN NULL ELSE finished_at END,
			attempts = CASE WHEN ` + startsFrom + ` THEN attempts + 1 ELSE attempts END,
			status = CASE WHEN ` + startsFrom + ` THEN 'running' ELSE status END,
			source_seq = CASE WHEN ` + startsFrom + ` THEN $2 ELSE source_seq END,
			started_at = COALESCE(started_at, now()),
			updated_at = now()`

const startsFrom = `(status IN ('pending', 'running') OR (status = 'failed' AND source_seq IS DISTINCT FROM $2))`

// IdleRuns returns unfinished runs (pending or running) that have not changed
// since before, oldest first, at most limit; tenantID "" means every tenant.
// After NATS lost its store they are the work that was in flight.
func (s *Store) IdleRuns(ctx context.Context, tenantID string, before time.Time, limit int) ([]Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runCols+` FROM sync_runs
		WHERE status IN ('pending', 'running') AND updated_at < $2 AND ($1 = '' OR tenant_id = $1)
		ORDER BY updated_at, sync_run_id LIMIT $3`, tenantID, before, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Run, error) { return scanRun(row) })
}

// LatestRun returns the newest run of one Magento entity, or ErrNotFound.
func (s *Store) LatestRun(ctx context.Context, tenantID, entityType string, magentoID int64) (Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runCols+` FROM sync_runs
		WHERE tenant_id = $1 AND entity_type = $2 AND magento_entity_id = $3
		ORDER BY created_at DESC LIMIT 1`, tenantID, entityType, magentoID))
	return r, notFound(err, fmt.Sprintf("sync run of %s %d", entityType, magentoID))
}

// Outcome is a run's terminal state.
type Outcome struct {
	RunID         string
	Status        string // succeeded | skipped | failed
	SageID        string
	SkipReason    string
	ErrorClass    string
	ErrorCode     string
	Message       string
	AppliedQuirks []string
	// Change is what a succeeded run did in Sage (ChangeCreated, …); it is
	// stored only with status succeeded.
	Change string
}

// FinishRun records a terminal outcome and returns the run as stored. Finishing
// an already-finished run with the same status keeps its first finished_at, so a
// redelivery produces the same result; a different status (an operator retry)
// overwrites it.
func (s *Store) FinishRun(ctx context.Context, o Outcome) (Run, error) {
	return s.FinishRunWith(ctx, o, Journal{})
}

// finishRun is FinishRun's statement and its arguments.
func finishRun(o Outcome) (string, []any, error) {
	switch o.Status {
	case RunSucceeded, RunSkipped, RunFailed:
	default:
		return "", nil, fmt.Errorf("store: %q is not a terminal run status", o.Status)
	}
	quirks := o.AppliedQuirks
	if quirks == nil {
		quirks = []string{}
	}
	change := ""
	if o.Status == RunSucceeded {
		change = o.Change
	}
	return `UPDATE sync_runs SET
			finished_at = CASE WHEN status = $2 AND finished_at IS NOT NULL THEN finished_at ELSE now() END,
			status = $2, sage_id = $3, skip_reason = $4, error_class = $5, error_code = $6, last_error = $7,
			applied_quirks = $8, sage_change = $9, updated_at = now()
		WHERE sync_run_id = $1 RETURNING ` + runCols,
		[]any{o.RunID, o.Status, o.SageID, o.SkipReason, o.ErrorClass, o.ErrorCode, o.Message, quirks, change}, nil
}

// NoteRunError stores the last transient error of a run that will be retried.
func (s *Store) NoteRunError(ctx context.Context, id, class, message string) error {
	return s.NoteRunErrorWith(ctx, id, class, message, Journal{})
}

// noteRunError is NoteRunError's statement.
const noteRunError = `UPDATE sync_runs SET error_class = $2, last_error = $3, updated_at = now() WHERE sync_run_id = $1`

// RunFilter selects runs for ListRuns.
type RunFilter struct {
	TenantID        string
	Status          string
	EntityType      string
	Event           string
	ErrorClass      string
	ErrorCode       string
	SkipReason      string
	MagentoEntityID int64
	// IncrementID is Magento's document number, matched against the webhook
	// payload's increment_id.
	IncrementID string
	// Since and Until bound created_at: since ≤ created_at < until (zero:
	// unbounded).
	Since, Until time.Time
	// Finished keeps only finished runs (succeeded, skipped, failed).
	Finished bool
	// After continues a listing: only runs older than this cursor (the
	// last run of the previous page).
	After *RunCursor
	Limit int
}

// RunCursor is a position in the newest-first order of runs.
type RunCursor struct {
	CreatedAt time.Time
	ID        string
}

// Cursor is the position just after r in the newest-first order.
func (r Run) Cursor() RunCursor { return RunCursor{CreatedAt: r.CreatedAt, ID: r.ID} }

// where renders the filter as a WHERE clause with its arguments (the
// arguments are numbered from 1).
func (f RunFilter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	for _, c := range []struct {
		col, v string
	}{{"tenant_id", f.TenantID}, {"status", f.Status}, {"entity_type", f.EntityType}, {"event", f.Event},
		{"error_class", f.ErrorClass}, {"error_code", f.ErrorCode}, {"skip_reason", f.SkipReason}} {
		if c.v != "" {
			add(c.col+" = ?", c.v)
		}
	}
	if f.Finished {
		conds = append(conds, "status IN ('succeeded', 'skipped', 'failed')")
	}
	if f.MagentoEntityID != 0 {
		add("magento_entity_id = ?", f.MagentoEntityID)
	}
	if f.IncrementID != "" {
		add("payload->>'increment_id' = ?", f.IncrementID)
	}
	if !f.Since.IsZero() {
		add("created_at >= ?", f.Since)
	}
	if !f.Until.IsZero() {
		add("created_at < ?", f.Until)
	}
	if f.After != nil {
		args = append(args, f.After.CreatedAt, f.After.ID)
		conds = append(conds, fmt.Sprintf("(created_at, sync_run_id) < ($%d, $%d::uuid)", len(args)-1, len(args)))
	}
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// ListRuns returns runs newest first (created_at, then id, both descending,
// so a page's last run is a stable cursor for the next page).
func (s *Store) ListRuns(ctx context.Context, f RunFilter) ([]Run, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 50
	}
	where, args := f.where()
	args = append(args, f.Limit)
	rows, err := s.pool.Query(ctx, `SELECT `+runCols+` FROM sync_runs`+where+
		` ORDER BY created_at DESC, sync_run_id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Counts summarise a tenant's runs for the tile and the admin API.
type Counts struct {
	Pending, Succeeded, Skipped, Failed, Failed24h int64
	LastRunAt                                      *time.Time
}

// RunCounts counts a tenant's runs by status.
func (s *Store) RunCounts(ctx context.Context, tenantID string) (Counts, error) {
	var c Counts
	err := s.pool.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE status IN ('pending', 'running')),
			count(*) FILTER (WHERE status = 'succeeded'),
			count(*) FILTER (WHERE status = 'skipped'),
			count(*) FILTER (WHERE status = 'failed'),
			count(*) FILTER (WHERE status = 'failed' AND finished_at > now() - interval '24 hours'),
			max(finished_at)
		FROM sync_runs WHERE tenant_id = $1`, tenantID).
		Scan(&c.Pending, &c.Succeeded, &c.Skipped, &c.Failed, &c.Failed24h, &c.LastRunAt)
	return c, err
}

// Attempt is one HTTP call made for a run.
type Attempt struct {
	RunID       string
	Stage       string // mapper | sage-writer | statecallback
	Method      string
	Path        string
	HTTPStatus  int
	Duration    time.Duration
	RequestID   string
	Outcome     string // ok | retry | failed
	ErrorSource string
	Envelope    string // the response body of a failure, secrets redacted
	// At is when the attempt was recorded (its end); read back only.
	At time.Time
}

// RecordAttempt appends to a run's attempt history.
func (s *Store) RecordAttempt(ctx context.Context, a Attempt) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sync_attempts
		(sync_run_id, stage, method, path, http_status, duration_ms, request_id, outcome, error_source, envelope)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`,
		a.RunID, a.Stage, a.Method, a.Path, a.HTTPStatus, a.Duration.Milliseconds(), a.RequestID, a.Outcome, a.ErrorSource, a.Envelope)
	return err
}

// Attempts lists a run's attempts in order.
func (s *Store) Attempts(ctx context.Context, runID string) ([]Attempt, error) {
	rows, err := s.pool.Query(ctx, attemptsSQL, runID)
	if err != nil {
		return nil, err
	}
	return scanAttempts(rows)
}

const attemptsSQL = `SELECT sync_run_id::text, stage, method, path, http_status, duration_ms, request_id,
		outcome, error_source, envelope, created_at FROM sync_attempts WHERE sync_run_id = $1 ORDER BY id`

func scanAttempts(rows pgx.Rows) ([]Attempt, error) {
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var ms int64
		if err := rows.Scan(&a.RunID, &a.Stage, &a.Method, &a.Path, &a.HTTPStatus, &ms, &a.RequestID, &a.Outcome, &a.ErrorSource, &a.Envelope, &a.At); err != nil {
			return nil, err
		}
		a.Duration = time.Duration(ms) * time.Millisecond
		out = append(out, a)
	}
	return out, rows.Err()
}
