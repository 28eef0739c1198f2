package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Journal is what one delivery of a run did that the store must know: the
// attempts it made and the entity_xref links it made or brought up to date,
// in order. The sage-writer keeps it in memory while it writes and has it
// written in one transaction with the run's conclusion (FinishRunWith,
// NoteRunErrorWith): one commit per delivery instead of one per call. Why a
// crash before that commit is safe is the writer's to argue (its package
// doc): the links are what stops a second create, and Sage's idempotency
// replay stands in for a link that was not yet recorded.
type Journal struct {
	Attempts []Attempt
	Links    []LinkWrite
}

// LinkWrite is one entity_xref write of a Journal: PutXref's (create or
// replace the link), or with DigestOnly SetXrefDigest's (record Digest as the
// body last written, if the link still names SageID).
type LinkWrite struct {
	Xref
	DigestOnly bool
}

// Empty reports whether the journal holds nothing to write.
func (j Journal) Empty() bool { return len(j.Attempts) == 0 && len(j.Links) == 0 }

// FinishRunWith is FinishRun writing j in the same transaction: the run's
// outcome, its attempts and its links are all recorded or none is.
func (s *Store) FinishRunWith(ctx context.Context, o Outcome, j Journal) (Run, error) {
	return s.Unit().FinishRunWith(ctx, o, j)
}

// NoteRunErrorWith is NoteRunError writing j in the same transaction: a
// delivery that will be retried leaves its attempts (an ambiguous create
// among them, which the retry resolves by lookup before it POSTs again) and
// the links it made.
func (s *Store) NoteRunErrorWith(ctx context.Context, id, class, message string, j Journal) error {
	return s.Unit().NoteRunErrorWith(ctx, id, class, message, j)
}

// withJournal sends j's statements and then those run queues as one
// batch: one round trip, which Postgres runs as one implicit transaction
// (pgx's Conn.SendBatch: "All queries are run in an implicit transaction
// unless explicit transaction control statements are executed"), so a failed
// statement rolls all of them back. The run exists (its delivery started it),
// so the run's statement finds its row.
func (s *Store) withJournal(ctx context.Context, j Journal, run func(b *pgx.Batch)) error {
	b := &pgx.Batch{}
	queueJournal(b, j)
	run(b)
	return s.pool.SendBatch(ctx, b).Close()
}

// queueJournal queues j's statements on b: its attempts in one statement,
// then its links in order.
func queueJournal(b *pgx.Batch, j Journal) {
	if len(j.Attempts) > 0 {
		b.Queue(insertAttempts, attemptColumns(j.Attempts)...)
	}
	for _, l := range j.Links {
		if l.DigestOnly {
			b.Queue(setXrefDigestSQL, l.TenantID, l.Kind, l.MagentoKey, l.Currency, l.SageID, l.Digest)
			continue
		}
		b.Queue(putXrefSQL, putXrefArgs(l.Xref)...)
	}
}

// insertAttempts appends a journal's attempts in one statement, in their
// order (ids are assigned in the order of ord), each stamped with the time it
// was made (At) rather than the time of the commit.
const insertAttempts = `INSERT INTO sync_attempts
		(sync_run_id, stage, method, path, http_status, duration_ms, request_id, outcome, error_source, envelope, created_at)
	SELECT run::uuid, stage, method, path, status, ms, request_id, outcome, source, envelope, at
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::text[], $8::text[],
		$9::text[], $10::text[], $11::timestamptz[])
		WITH ORDINALITY AS a(run, stage, method, path, status, ms, request_id, outcome, source, envelope, at, ord)
	ORDER BY ord`

// attemptColumns is the arguments of insertAttempts: one array per column.
func attemptColumns(atts []Attempt) []any {
	n := len(atts)
	runs, stages, methods, paths := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	statuses, ms := make([]int32, n), make([]int64, n)
	reqs, outcomes, sources, envs, ats := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n)
	now := time.Now()
	for i, a := range atts {
		runs[i], stages[i], methods[i], paths[i] = a.RunID, a.Stage, a.Method, a.Path
		statuses[i], ms[i] = int32(a.HTTPStatus), a.Duration.Milliseconds()
		reqs[i], outcomes[i], sources[i], envs[i], ats[i] = a.RequestID, a.Outcome, a.ErrorSource, a.Envelope, a.At
		if a.At.IsZero() {
			ats[i] = now
		}
	}
	return []any{runs, stages, methods, paths, statuses, ms, reqs, outcomes, sources, envs, ats}
}

// WriteJournal writes j on its own, in one transaction: what a delivery must
// not leave to its conclusion (the sage-writer's ambiguous creates).
func (s *Store) WriteJournal(ctx context.Context, j Journal) error {
	return s.Unit().WriteJournal(ctx, j)
}
