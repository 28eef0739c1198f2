package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Unit is a stage's work on one run as one transaction: the links it reads to
// decide, and the record of what it decided. BEGIN travels in the round trip
// of the unit's first read and COMMIT in the round trip of its record, so the
// unit costs the same round trips as statements sent one by one, and one
// commit instead of one per round trip. The transaction is READ COMMITTED
// whatever the server's default: every statement reads what was committed
// when it started, as it would on its own. The mapper's reads take no lock;
// the writer's start (an UPDATE) holds the run's row until the unit commits.
//
// A Unit holds a pooled connection from its first read to its record (or
// Close): keep what runs in between in memory, and never use the Store's pool
// in between (a unit waiting for a connection while holding one could starve
// the pool). Close rolls back what was not committed and returns the
// connection; call it on every way out. A Unit is for one goroutine.
type Unit struct {
	pool *pgxpool.Pool
	long bool          // may stay open across outside calls (Units)
	conn *pgxpool.Conn // from the first read to the record or Close
}

// Unit returns a unit of work on s; nothing is sent until its first read.
func (s *Store) Unit() *Unit { return &Unit{pool: s.pool} }

// Units hands out units whose transactions stay open across calls to other
// systems (the sage-writer's Sage calls, between its start and its
// conclusion). They come from a pool of their own: a unit holding one of its
// connections may need the Store's pool meanwhile (a token refresh), and
// must never wait for a connection another unit holds. Their transactions
// turn the server's idle_in_transaction_session_timeout off, as the callback
// locks' do: a session ended under a write by that timeout would lose the
// write's record while its calls are still running.
type Units struct{ pool *pgxpool.Pool }

// NewUnits opens a pool of at most maxConns connections for units (one per
// unit open at once: size it to the work in flight). Close it when done.
func (s *Store) NewUnits(ctx context.Context, maxConns int) (*Units, error) {
	if maxConns < 1 {
		return nil, fmt.Errorf("store: units need at least one connection, got %d", maxConns)
	}
	cfg := s.pool.Config().Copy()
	cfg.MaxConns = int32(maxConns)
	cfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: units: %w", err)
	}
	return &Units{pool: pool}, nil
}

// Unit returns a unit of work on the units' pool.
func (us *Units) Unit() *Unit { return &Unit{pool: us.pool, long: true} }

// Close releases the units' pool (rolling back any unit still open).
func (us *Units) Close() { us.pool.Close() }

// beginSQL opens a unit's transaction (explicit, like the callback locks':
// see CallbackLocker.Lock).
const beginSQL = `BEGIN ISOLATION LEVEL READ COMMITTED`

// read sends what queue queues in the unit's transaction, beginning it first
// if this is the unit's first round trip, and hands the results to scan.
func (u *Unit) read(ctx context.Context, queue func(*pgx.Batch), scan func(pgx.BatchResults) error) error {
	b := &pgx.Batch{}
	if u.conn == nil {
		conn, err := u.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		u.conn = conn
		b.Queue(beginSQL)
		if u.long {
			b.Queue(`SET LOCAL idle_in_transaction_session_timeout = 0`)
		}
	}
	opening := b.Len()
	queue(b)
	br := u.conn.SendBatch(ctx, b)
	err := func() error {
		for range opening {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		return scan(br)
	}()
	err = errors.Join(err, br.Close())
	if u.conn.Conn().PgConn().TxStatus() != 'T' {
		// The transaction failed (or the connection did): what the unit
		// sends next runs on its own.
		u.Close()
	}
	return err
}

// commit sends what queue queues and commits the unit's transaction in the
// same round trip (a unit that read nothing sends it as one implicit
// transaction), hands the results to scan and returns the connection.
func (u *Unit) commit(ctx context.Context, queue func(*pgx.Batch), scan func(pgx.BatchResults) error) error {
	b := &pgx.Batch{}
	queue(b)
	if u.conn == nil {
		br := u.pool.SendBatch(ctx, b)
		return errors.Join(scan(br), br.Close())
	}
	b.Queue(`COMMIT`)
	br := u.conn.SendBatch(ctx, b)
	err := scan(br)
	// Close reads the rest, COMMIT included: an error in any statement
	// before it means nothing was committed.
	err = errors.Join(err, br.Close())
	u.Close()
	return err
}

// Close rolls back what the unit did not commit and returns its connection
// to the pool. It is safe to call more than once, and after the record.
func (u *Unit) Close() {
	if u.conn == nil {
		return
	}
	conn := u.conn
	u.conn = nil
	if conn.Conn().PgConn().TxStatus() != 'I' {
		// Not bound to the caller's context, which may be what ended: a
		// connection left in a transaction is closed by the pool instead.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _ = conn.Exec(ctx, `ROLLBACK`)
		cancel()
	}
	conn.Release()
}

// Xref implements what Store.Xref does, in the unit's transaction.
func (u *Unit) Xref(ctx context.Context, tenantID, kind, magentoKey, currency string) (Xref, error) {
	x := Xref{TenantID: tenantID, Kind: kind, MagentoKey: magentoKey, Currency: currency}
	err := u.read(ctx, func(b *pgx.Batch) { b.Queue(xrefSQL, tenantID, kind, magentoKey, currency) },
		func(br pgx.BatchResults) error {
			return notFound(br.QueryRow().Scan(&x.SageID, &x.Reference, &x.Digest), "entity_xref "+kind+" "+magentoKey)
		})
	return x, err
}

// Xrefs implements what Store.Xrefs does, in the unit's transaction.
func (u *Unit) Xrefs(ctx context.Context, tenantID string, keys []XrefKey) (map[XrefKey]Xref, error) {
	if len(keys) == 0 {
		return map[XrefKey]Xref{}, nil
	}
	var out map[XrefKey]Xref
	err := u.read(ctx, func(b *pgx.Batch) { b.Queue(xrefsSQL, xrefsArgs(tenantID, keys)...) },
		func(br pgx.BatchResults) error {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			out, err = scanXrefs(rows, tenantID, len(keys))
			return err
		})
	return out, err
}

// StartAndRecordMapping is StartRunFrom and RecordMapping in one statement,
// with the mapping's attempts and links, committing the unit: the mapper's
// one commit for a run it maps, its links' reads included. The mapping is
// recorded only when the run started; a run that did not (finished already,
// or failed from the same message) keeps its own. Its attempts and links are
// written either way: they happened.
func (u *Unit) StartAndRecordMapping(ctx context.Context, runID string, seq uint64, m Mapping) (Run, error) {
	var r Run
	err := u.commit(ctx, func(b *pgx.Batch) {
		// One statement, so one new version of the run's row: the start,
		// and the mapping when the run starts.
		b.Queue(`UPDATE sync_runs SET `+startFromSet+`,
			policy_snapshot = CASE WHEN `+startsFrom+` THEN $3::jsonb ELSE policy_snapshot END,
			canonical = CASE WHEN `+startsFrom+` THEN $4::jsonb ELSE canonical END,
			sage_request = CASE WHEN `+startsFrom+` THEN $5::jsonb ELSE sage_request END
			WHERE sync_run_id = $1 RETURNING `+runCols,
			runID, int64(seq), jsonText(m.Policy), jsonText(m.Canonical), jsonText(m.SageRequest))
		queueJournal(b, m.journal())
	}, func(br pgx.BatchResults) error {
		var err error
		r, err = scanRun(br.QueryRow())
		return notFound(err, "sync run "+runID)
	})
	return r, err
}

// StartStageWithLinks is Store.StartStageWithLinks in the unit's
// transaction: the sage-writer's start, whose row lock on the run is held
// until the unit commits its conclusion.
func (u *Unit) StartStageWithLinks(ctx context.Context, id, stage, tenantID string, keys []XrefKey) (Run, bool, map[XrefKey]Xref, error) {
	st := startStageWithLinks{id: id, stage: stage, tenantID: tenantID, keys: keys}
	if err := u.read(ctx, st.queue, st.scan); err != nil {
		return Run{}, false, nil, err
	}
	return st.run, st.earlier, st.links, nil
}

// Attempts is Store.Attempts in the unit's transaction.
func (u *Unit) Attempts(ctx context.Context, runID string) ([]Attempt, error) {
	var out []Attempt
	err := u.read(ctx, func(b *pgx.Batch) { b.Queue(attemptsSQL, runID) }, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		out, err = scanAttempts(rows)
		return err
	})
	return out, err
}

// FinishRunWith is FinishRun writing j in the same transaction, committing
// the unit: the run's outcome, its attempts and its links are all recorded
// or none is.
func (u *Unit) FinishRunWith(ctx context.Context, o Outcome, j Journal) (Run, error) {
	sql, args, err := finishRun(o)
	if err != nil {
		return Run{}, err
	}
	var r Run
	err = u.commit(ctx, func(b *pgx.Batch) {
		queueJournal(b, j)
		b.Queue(sql, args...).QueryRow(func(row pgx.Row) error {
			var err error
			r, err = scanRun(row)
			return err
		})
	}, func(pgx.BatchResults) error { return nil }) // read as the batch closes, in order
	return r, notFound(err, "sync run "+o.RunID)
}

// NoteRunErrorWith is NoteRunError writing j in the same transaction,
// committing the unit.
func (u *Unit) NoteRunErrorWith(ctx context.Context, id, class, message string, j Journal) error {
	return u.commit(ctx, func(b *pgx.Batch) {
		queueJournal(b, j)
		b.Queue(noteRunError, id, class, message)
	}, func(pgx.BatchResults) error { return nil })
}

// WriteJournal writes j, committing the unit (with what it did before: the
// sage-writer's start, when it checkpoints an ambiguous create). An empty
// journal commits nothing.
func (u *Unit) WriteJournal(ctx context.Context, j Journal) error {
	if j.Empty() {
		return nil
	}
	return u.commit(ctx, func(b *pgx.Batch) { queueJournal(b, j) }, func(pgx.BatchResults) error { return nil })
}
