package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Sharing Sage's app-wide limits among the writers running now.
//
// Every writer keeps a key in the KV bucket WritersBucket, refreshed every
// Heartbeat; the bucket forgets a key after WriterTTL, so a writer that
// stops deletes its key and one that dies drops out after WriterTTL.
//
//   - Concurrency: each writer may have AppConcurrency / (live writers) calls
//     in flight. A writer that joins waits ShareDelay (longer than a
//     heartbeat) before it takes its share, so the others have shrunk theirs
//     first; a share shrinks for new calls at once, and calls already in
//     flight finish, so the app-wide total stays within the limit once the
//     calls started under a larger share are done (at most the HTTP timeout).
//   - Requests per UTC day: the day's count lives in BudgetBucket. A writer
//     takes blocks of DayBlock requests from it with compare-and-set and
//     spends them locally, so the writers together never send more than the
//     limit; a writer that stops leaves at most one unspent block unused.

// Buckets and timings of the fleet.
const (
	WritersBucket = "LEDGER_WRITERS"
	BudgetBucket  = "LEDGER_APP_BUDGET"
	Heartbeat     = 2 * time.Second
	WriterTTL     = 3 * Heartbeat
	ShareDelay    = 2 * Heartbeat
	DayBlock      = 100
)

// Fleet is one writer's seat in the fleet sharing the app limits.
type Fleet struct {
	b       *Budget
	id      string
	writers jetstream.KeyValue
	ledger  jetstream.KeyValue
	log     *slog.Logger

	mu    sync.Mutex
	day   time.Time // the UTC day of the block held
	block int       // requests of the day left in the block held
}

// JoinFleet makes the buckets (replicas copies) and registers writer id;
// from then on b takes its concurrency share and its daily requests from the
// fleet. Run keeps the seat; Leave gives it up.
func JoinFleet(ctx context.Context, js jetstream.JetStream, b *Budget, id string, replicas int, log *slog.Logger) (*Fleet, error) {
	writers, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: WritersBucket, Description: "sage-writer: the writers running now (one key each, refreshed every heartbeat)",
		TTL: WriterTTL, Storage: jetstream.MemoryStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("budget: bucket %s: %w", WritersBucket, err)
	}
	ledger, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: BudgetBucket, Description: "sage-writer: Sage requests granted per UTC day, shared by every writer",
		TTL: 48 * time.Hour, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("budget: bucket %s: %w", BudgetBucket, err)
	}
	f := &Fleet{b: b, id: id, writers: writers, ledger: ledger, log: log}
	if err := f.beat(ctx); err != nil {
		return nil, err
	}
	n, err := f.live(ctx)
	if err != nil {
		return nil, err
	}
	// Alone, the whole limit is this writer's at once; joining others, it
	// waits until they have shrunk their shares (Run).
	share := 0
	if n <= 1 {
		share = b.cfg.AppConcurrency
	}
	b.shareWith(f, share)
	return f, nil
}

// Run refreshes the seat and recomputes the share every Heartbeat until ctx
// ends, then leaves the fleet.
func (f *Fleet) Run(ctx context.Context) {
	defer f.Leave()
	joined := time.Now()
	t := time.NewTicker(Heartbeat)
	defer t.Stop()
	for {
		if err := f.beat(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("budget: could not refresh this writer's seat in the fleet; keeping the last share", "err", err)
		}
		n, err := f.live(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			f.log.Warn("budget: could not count the writers; keeping the last share", "err", err)
		case err == nil && time.Since(joined) >= ShareDelay:
			f.b.setConcurrency(max(f.b.cfg.AppConcurrency/max(n, 1), 1))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Leave deletes the seat, so the others grow their shares at their next
// heartbeat.
func (f *Fleet) Leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = f.writers.Delete(ctx, f.key())
}

func (f *Fleet) key() string { return "writer." + f.id }

func (f *Fleet) beat(ctx context.Context) error {
	_, err := f.writers.Put(ctx, f.key(), []byte(time.Now().UTC().Format(time.RFC3339)))
	return err
}

// live counts the writers whose seats have not expired.
func (f *Fleet) live(ctx context.Context) (int, error) {
	lister, err := f.writers.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return 0, nil
		}
		return 0, err
	}
	n := 0
	for k := range lister.Keys() {
		if strings.HasPrefix(k, "writer.") {
			n++
		}
	}
	return n, nil
}

// take spends one request of today's app budget, leasing a new block from the
// shared count when the one held is spent.
func (f *Fleet) take(ctx context.Context, now time.Time) (bool, error) {
	day := now.UTC().Truncate(24 * time.Hour)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !day.Equal(f.day) {
		f.day, f.block = day, 0
	}
	if f.block == 0 {
		n, err := f.lease(ctx, day)
		if err != nil {
			return false, err
		}
		f.block = n
	}
	if f.block == 0 {
		return false, nil
	}
	f.block--
	return true, nil
}

// lease moves up to DayBlock requests from the day's shared count to this
// writer (0 when the day's limit is reached).
func (f *Fleet) lease(ctx context.Context, day time.Time) (int, error) {
	key := "day." + day.Format("20060102")
	limit := f.b.cfg.AppRequestsPerDay
	for range 20 {
		e, err := f.ledger.Get(ctx, key)
		granted, rev := 0, uint64(0)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return 0, err
		default:
			if granted, err = strconv.Atoi(string(e.Value())); err != nil {
				return 0, fmt.Errorf("budget: %s holds %q, not a count", key, e.Value())
			}
			rev = e.Revision()
		}
		n := min(DayBlock, limit-granted)
		if n <= 0 {
			return 0, nil
		}
		val := []byte(strconv.Itoa(granted + n))
		if rev == 0 {
			_, err = f.ledger.Create(ctx, key, val)
		} else {
			_, err = f.ledger.Update(ctx, key, val, rev)
		}
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongRevision(err) {
			return 0, err
		}
		// Another writer leased first: read again.
	}
	return 0, errors.New("budget: the daily count kept changing under this writer; try again")
}

// isWrongRevision recognises a compare-and-set that lost.
func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
