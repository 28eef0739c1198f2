package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/results"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Backfill limits and defaults.
const (
	DefaultBackfillBatch = 1000
	MaxBackfillBatch     = 1000
	// DefaultBackfillStall is how long a backfill waits without any
	// confirmation from the shop before it stops.
	DefaultBackfillStall = 2 * time.Minute
	// backfillWindowBatches bounds how many published batches may wait for the
	// shop's confirmation: the backfill goes as fast as the shop takes them.
	backfillWindowBatches = 4
	// backfillPoll is how often unconfirmed batches are checked.
	backfillPoll = 50 * time.Millisecond
	// MaxRate bounds --rate of backfills and replays.
	MaxRate = 100_000
)

// syncStateEntityTypes are the entity types Magento keeps a sync state for.
var syncStateEntityTypes = []string{"invoice", "creditmemo", "customer", "product"}

// defaultBackfillTypes are walked when the request names none.
var defaultBackfillTypes = []string{"invoice", "creditmemo"}

// BackfillSyncState pushes the state of a tenant's succeeded runs to Magento
// (the seed's planned byte8:sage:sync-state:backfill). It walks the runs in
// (finished_at, sync_run_id) order, publishes each run's SyncResult to RESULTS
// with Nats-Msg-Id "backfill:<run>" (a second backfill within the dedupe window
// stores nothing, and statecallback's newest-wins marks make later re-sends
// harmless), and saves a cursor after every published batch, so an interrupted
// backfill resumes after the last batch it published. It paces itself by the
// shop: at most backfillWindowBatches batches wait for statecallback to confirm
// delivery (the callback mark), and a shop that confirms nothing for the stall
// timeout stops the backfill with Unavailable (resumable). Progress is
// streamed after every batch; the last message has done set.
func (s *Service) BackfillSyncState(req *ledgerv1.BackfillSyncStateRequest, stream grpc.ServerStreamingServer[ledgerv1.BackfillSyncStateResponse]) error {
	ctx := stream.Context()
	t, err := s.tenant(ctx, req.GetTenantId())
	if err != nil {
		return err
	}
	types, err := backfillTypes(req.GetEntityTypes())
	if err != nil {
		return err
	}
	rate, err := checkRate(req.GetRate())
	if err != nil {
		return err
	}
	batch := int(req.GetBatchSize())
	switch {
	case batch == 0:
		batch = DefaultBackfillBatch
	case batch < 0 || batch > MaxBackfillBatch:
		return status.Errorf(codes.InvalidArgument, "batch_size %d: use 1–%d (default %d)", batch, MaxBackfillBatch, DefaultBackfillBatch)
	}
	k := store.BackfillKey{TenantID: t.ID, EntityTypes: types}
	if req.GetSince() != nil {
		if !req.GetSince().IsValid() {
			return status.Error(codes.InvalidArgument, "since is not a valid time")
		}
		k.Since = req.GetSince().AsTime()
	}
	log := s.log.With("tenant_id", t.ID, "entity_types", strings.Join(types, ","), "since", k.Since)

	if req.GetDryRun() {
		return s.backfillDryRun(ctx, k, stream)
	}
	if err := s.requireBus(); err != nil {
		return err
	}
	cur, err := s.st.BeginBackfill(ctx, k)
	if err != nil {
		return s.storeErr(ctx, "begin backfill", err)
	}
	total, remaining, err := s.st.CountBackfill(ctx, k, cur)
	if err != nil {
		return s.storeErr(ctx, "count runs", err)
	}
	b := &backfill{s: s, k: k, cur: cur, total: total, stream: stream, batch: batch, pace: newPacer(rate)}
	msg := fmt.Sprintf("%d succeeded runs to push", remaining)
	if cur.Resumed() {
		msg = fmt.Sprintf("resuming the backfill started %s: %d of %d runs already pushed, %d to go",
			cur.StartedAt.UTC().Format(time.RFC3339), total-remaining, total, remaining)
	}
	log.InfoContext(ctx, "backfill starting", "total", total, "remaining", remaining, "resumed", cur.Resumed(), "rate", rate)
	if err := b.send(false, msg); err != nil {
		return err
	}
	started := time.Now()
	if err := b.run(ctx); err != nil {
		log.WarnContext(ctx, "backfill stopped", "pushed", b.cur.Pushed, "err", err)
		if ctx.Err() != nil {
			return status.Error(codes.Canceled, "backfill interrupted: run the same command again to resume after the last published batch")
		}
		return err
	}
	if err := s.st.SaveBackfill(context.WithoutCancel(ctx), k, b.cur, true); err != nil {
		return s.storeErr(ctx, "complete backfill", err)
	}
	elapsed := time.Since(started)
	done := fmt.Sprintf("backfill complete: %d pushed, %d already pushed recently (not sent again), %d confirmed by the shop in %s (%.0f rows/s)",
		b.cur.Pushed, b.cur.Skipped, b.confirmed, elapsed.Round(time.Millisecond), float64(b.sessionPushed)/max(elapsed.Seconds(), 1e-3))
	log.InfoContext(ctx, "backfill complete", "pushed", b.cur.Pushed, "skipped", b.cur.Skipped, "elapsed", elapsed)
	return b.send(true, done)
}

func (s *Service) backfillDryRun(ctx context.Context, k store.BackfillKey, stream grpc.ServerStreamingServer[ledgerv1.BackfillSyncStateResponse]) error {
	cur, ok, err := s.st.PeekBackfill(ctx, k)
	if err != nil {
		return s.storeErr(ctx, "read backfill cursor", err)
	}
	if ok && !cur.Resumed() {
		cur = store.BackfillCursor{}
	}
	total, remaining, err := s.st.CountBackfill(ctx, k, cur)
	if err != nil {
		return s.storeErr(ctx, "count runs", err)
	}
	msg := fmt.Sprintf("dry run: would push %d succeeded runs", remaining)
	if cur.Resumed() {
		msg += fmt.Sprintf(" (resuming an interrupted backfill: %d of %d already pushed)", total-remaining, total)
	}
	return stream.Send(&ledgerv1.BackfillSyncStateResponse{Total: total, Pushed: total - remaining, Done: true, Message: msg})
}

// backfill is one running backfill.
type backfill struct {
	s      *Service
	k      store.BackfillKey
	cur    store.BackfillCursor
	total  int64
	stream grpc.ServerStreamingServer[ledgerv1.BackfillSyncStateResponse]
	batch  int
	pace   *pacer

	// inflight are published batches not yet confirmed by the shop, oldest first.
	inflight      []pendingBatch
	confirmed     int64
	sessionPushed int64
	unconfirmed   int64
}

// pendingBatch is a published batch waiting for the shop.
type pendingBatch struct {
	ids       []string
	published time.Time // database clock before the publish
	confirmed int
}

func (b *backfill) send(done bool, msg string) error {
	return b.stream.Send(&ledgerv1.BackfillSyncStateResponse{
		Total: b.total, Pushed: b.cur.Pushed, Skipped: b.cur.Skipped, Failed: b.unconfirmed, Done: done, Message: msg,
	})
}

func (b *backfill) run(ctx context.Context) error {
	for {
		page, err := b.s.st.BackfillPage(ctx, b.k, b.cur, b.batch)
		if err != nil {
			return b.s.storeErr(ctx, "read runs", err)
		}
		if len(page) == 0 {
			break
		}
		before, err := b.s.st.Now(ctx)
		if err != nil {
			return b.s.storeErr(ctx, "read clock", err)
		}
		fresh, dups, err := b.publish(ctx, page)
		if err != nil {
			return err
		}
		last := page[len(page)-1]
		b.cur.AfterFinishedAt, b.cur.AfterRunID = *last.FinishedAt, last.ID
		b.cur.Pushed += int64(len(fresh))
		b.cur.Skipped += int64(dups)
		b.sessionPushed += int64(len(fresh))
		// The batch is durable in RESULTS: record the position even if the
		// caller has gone, so a resume never publishes it again.
		if err := b.s.st.SaveBackfill(context.WithoutCancel(ctx), b.k, b.cur, false); err != nil {
			return b.s.storeErr(ctx, "save backfill cursor", err)
		}
		b.s.metrics.backfill.WithLabelValues("pushed").Add(float64(len(fresh)))
		b.s.metrics.backfill.WithLabelValues("duplicate").Add(float64(dups))
		if len(fresh) > 0 {
			b.inflight = append(b.inflight, pendingBatch{ids: fresh, published: before})
		}
		if err := b.send(false, ""); err != nil {
			return err
		}
		if err := b.waitShop(ctx, backfillWindowBatches); err != nil {
			return err
		}
		if len(page) < b.batch {
			break
		}
	}
	return b.waitShop(ctx, 0)
}

// publish sends one page's results asynchronously and waits for every
// acknowledgement. It returns the run ids JetStream stored and the number it
// recognised as duplicates (already pushed within the dedupe window).
func (b *backfill) publish(ctx context.Context, page []store.Run) (fresh []string, dups int, err error) {
	futures := make([]jetstream.PubAckFuture, 0, len(page))
	for _, r := range page {
		if err := b.pace.wait(ctx); err != nil {
			return nil, 0, err
		}
		res := results.FromRun(r)
		data, err := proto.Marshal(res)
		if err != nil {
			return nil, 0, status.Errorf(codes.Internal, "encoding the result of run %s: %v", r.ID, err)
		}
		m := &nats.Msg{Subject: bus.ResultSubject(r.TenantID, res.GetEntityType()), Data: data, Header: nats.Header{}}
		m.Header.Set(bus.HeaderType, string(res.ProtoReflect().Descriptor().FullName()))
		f, err := b.s.js.PublishMsgAsync(m, jetstream.WithMsgID("backfill:"+r.ID))
		if err != nil {
			return nil, 0, b.publishErr(err)
		}
		futures = append(futures, f)
	}
	fresh = make([]string, 0, len(page))
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dups++
			} else {
				fresh = append(fresh, page[i].ID)
			}
		case err := <-f.Err():
			return nil, 0, b.publishErr(err)
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	return fresh, dups, nil
}

func (b *backfill) publishErr(err error) error {
	b.s.metrics.backfill.WithLabelValues("failed").Inc()
	return status.Errorf(codes.Unavailable, "publishing sync results to RESULTS failed (%v): check NATS, then run the backfill again to resume", err)
}

// waitShop waits until at most keep published batches are unconfirmed. It
// gives up when the shop confirms nothing for the stall timeout.
func (b *backfill) waitShop(ctx context.Context, keep int) error {
	lastProgress := time.Now()
	for len(b.inflight) > keep {
		p := &b.inflight[0]
		n, err := b.s.st.SyncStatesDelivered(ctx, p.ids, p.published)
		if err != nil {
			return b.s.storeErr(ctx, "check delivered sync states", err)
		}
		if n > p.confirmed {
			b.confirmed += int64(n - p.confirmed)
			p.confirmed = n
			lastProgress = time.Now()
		}
		if n >= len(p.ids) {
			b.inflight = b.inflight[1:]
			continue
		}
		if time.Since(lastProgress) > b.s.backfillStall {
			for _, q := range b.inflight {
				b.unconfirmed += int64(len(q.ids) - q.confirmed)
			}
			_ = b.send(true, "")
			return status.Errorf(codes.Unavailable,
				"the shop confirmed no sync state for %s (is it down, or is its binding revoked?): %d published rows wait in RESULTS "+
					"and statecallback delivers them once the shop takes them; run the backfill again later to continue after the last published batch",
				b.s.backfillStall, b.unconfirmed)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backfillPoll):
		}
	}
	return nil
}

// backfillTypes validates the requested entity types (default invoice and
// creditmemo).
func backfillTypes(in []string) ([]string, error) {
	var out []string
	for _, raw := range in {
		for _, t := range strings.Split(raw, ",") {
			t = strings.ToLower(strings.TrimSpace(t))
			if t == "" {
				continue
			}
			if t == "credit_memo" || t == "creditmemos" {
				t = "creditmemo"
			}
			if !slices.Contains(syncStateEntityTypes, t) {
				return nil, status.Errorf(codes.InvalidArgument, "entity type %q: use %s", t, strings.Join(syncStateEntityTypes, ", "))
			}
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		out = slices.Clone(defaultBackfillTypes)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func checkRate(r int32) (int, error) {
	if r < 0 || r > MaxRate {
		return 0, status.Errorf(codes.InvalidArgument, "rate %d: use 0 (unlimited) to %d per second", r, MaxRate)
	}
	return int(r), nil
}

// pacer spaces operations to at most rate per second (0 = unlimited).
type pacer struct {
	rate  int
	start time.Time
	n     int64
}

func newPacer(rate int) *pacer { return &pacer{rate: rate} }

func (p *pacer) wait(ctx context.Context) error {
	if p.rate <= 0 {
		return ctx.Err()
	}
	if p.n == 0 {
		p.start = time.Now()
	}
	due := p.start.Add(time.Duration(float64(p.n) / float64(p.rate) * float64(time.Second)))
	p.n++
	d := time.Until(due)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
