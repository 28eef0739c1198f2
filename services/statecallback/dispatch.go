package statecallback

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/store"
)

// dispatcher groups the consumer's deliveries per shop (tenant) and runs
// batches: at most PerShop batches and calls of one shop and Workers batches
// overall in flight, one entity in at most one batch at a time, and only the
// newest result of an entity in a batch (the older ones are stale and
// acknowledged unsent).
//
// Batches are sized to the work: a batch starts when BatchSize results are
// waiting or when the oldest waiting result has waited BatchLinger, whichever
// comes first. A steady stream of results for a shop is therefore delivered
// BatchLinger's worth at a time (each batch costs one Postgres transaction,
// whatever its size), a backlog in batches of BatchSize, and no result waits
// for a batch longer than BatchLinger once a worker is free. A shop has one
// worker gathering its next batch; another starts (up to PerShop) when every
// worker is delivering one, or for a backlog beyond one batch per gathering
// worker.
type dispatcher struct {
	s      *Service
	spec   bus.ConsumerSpec
	locker *store.CallbackLocker
	runCtx context.Context // cancelled at shutdown: no new batches
	sem    chan struct{}   // batches in flight, all shops
	wg     sync.WaitGroup

	mu    sync.Mutex
	shops map[string]*shopQueue
	held  map[uint64]jetstream.Msg // stream seq → message, queued or in a batch
}

// shopQueue is one shop's waiting deliveries, in arrival order.
type shopQueue struct {
	tenantID string
	pending  []*delivery
	inflight map[store.CallbackEntity]bool // entities in a running batch
	workers  int
	waiting  int // workers in await: gathering their next batch, not delivering one
	// wake tells a waiting worker that a full batch is pending.
	wake chan struct{}
	// calls bounds the shop's concurrent calls (PerShop), over all its
	// batches.
	calls chan struct{}
}

func newDispatcher(s *Service, runCtx context.Context, spec bus.ConsumerSpec, locker *store.CallbackLocker) *dispatcher {
	return &dispatcher{
		s: s, spec: spec, locker: locker, runCtx: runCtx,
		sem:   make(chan struct{}, s.cfg.Workers),
		shops: map[string]*shopQueue{},
		held:  map[uint64]jetstream.Msg{},
	}
}

// settle settles one message in its consumer span, then ends the span. The
// acknowledgement is bounded and survives shutdown, so a decided outcome is
// still recorded.
// start is when the delivery arrived: the stage's duration runs from there
// to the settlement.
func (d *dispatcher) settle(span trace.Span, msg jetstream.Msg, out bus.Outcome, start time.Time) {
	ctx, cancel := context.WithTimeout(trace.ContextWithSpan(context.WithoutCancel(d.runCtx), span), 30*time.Second)
	defer cancel()
	settled := bus.Settle(ctx, d.s.js, d.spec, msg, out, d.s.log)
	bus.EndConsumerSpan(span, out, settled)
	d.spec.Metrics.Settled(d.spec.Stage, settled, time.Since(start))
}

// accept takes one message from the consumer; it never blocks on a shop.
// Each message is a consumer span ("statecallback process") from here until
// it is settled.
func (d *dispatcher) accept(msg jetstream.Msg) {
	start := time.Now()
	d.spec.Metrics.Received(d.spec.Stage, msg)
	ctx, span := bus.StartConsumerSpan(context.WithoutCancel(d.runCtx), d.spec.Stage, d.spec.Durable, msg)
	dl, out := d.s.prepare(ctx, msg)
	if dl == nil {
		d.settle(span, msg, out, start)
		return
	}
	dl.start = start
	tenant := dl.res.GetTenantId()
	d.mu.Lock()
	if _, dup := d.held[dl.seq]; dup && dl.seq != 0 {
		// JetStream redelivered a message we still hold (it waited past
		// AckWait); the copy we hold settles it.
		d.mu.Unlock()
		span.End()
		return
	}
	d.held[dl.seq] = msg
	q := d.shops[tenant]
	if q == nil {
		q = &shopQueue{tenantID: tenant, inflight: map[store.CallbackEntity]bool{},
			wake: make(chan struct{}, 1), calls: make(chan struct{}, d.s.cfg.PerShop)}
		d.shops[tenant] = q
	}
	q.pending = append(q.pending, dl)
	// A worker gathering a batch takes this delivery too; another one starts
	// (up to PerShop) only when every worker is delivering a batch — a slow
	// or hung call must not hold up the shop's next batch — or for a backlog
	// beyond what the gathering workers take in one batch each. (While an
	// entity waits for a batch in flight, the worker of that batch takes it
	// next.)
	spawn := q.workers == 0 || (q.workers < d.s.cfg.PerShop && len(q.pending) > q.waiting*d.s.cfg.BatchSize)
	if spawn {
		q.workers++
		d.wg.Add(1)
	}
	if len(q.pending) >= d.s.cfg.BatchSize {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	d.mu.Unlock()
	if spawn {
		go d.work(q)
	}
}

// work runs batches of one shop until nothing it may take is left.
func (d *dispatcher) work(q *shopQueue) {
	defer d.wg.Done()
	for d.await(q) {
		d.sem <- struct{}{}
		batch, stale := d.take(q)
		d.unhold(stale)
		for _, dl := range stale {
			dl.log.InfoContext(dl.context(d.runCtx), "statecallback: superseded by a newer result in the same batch; not sending")
			d.s.results.WithLabelValues(outcomeStale).Inc()
			d.settle(dl.span, dl.msg, bus.Done(), dl.start)
		}
		if len(batch) > 0 {
			d.s.batchSize.Observe(float64(len(batch)))
			// Bounded so a hung store cannot hold the entities for ever; the
			// shop calls have their own timeouts.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(d.runCtx), time.Duration(len(batch)+2)*d.s.cfg.HTTPTimeout+30*time.Second)
			d.s.deliverBatch(ctx, d.locker, &batchRun{tenantID: q.tenantID, all: batch, calls: q.calls,
				stopping: func() bool { return d.runCtx.Err() != nil }})
			cancel()
			d.unhold(batch)
			for _, dl := range batch {
				d.settle(dl.span, dl.msg, dl.out, dl.start)
			}
		}
		<-d.sem
		d.finish(q, batch)
	}
}

// await waits until q holds a batch to take: BatchSize deliveries not in
// flight, or one that has waited BatchLinger. It retires the worker (under the
// same lock as the check, so accept starts another one for anything that
// arrives later) and returns false when nothing is left to take, or when the
// service is stopping.
func (d *dispatcher) await(q *shopQueue) bool {
	var timer *time.Timer
	d.mu.Lock()
	q.waiting++
	d.mu.Unlock()
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		d.mu.Lock()
		if d.runCtx.Err() != nil {
			q.waiting--
			d.retire(q)
			d.mu.Unlock()
			return false
		}
		n, oldest := 0, time.Time{}
		for _, dl := range q.pending {
			if q.inflight[dl.entity] {
				continue
			}
			if n == 0 {
				oldest = dl.start
			}
			n++
		}
		if n == 0 {
			q.waiting--
			d.retire(q)
			d.mu.Unlock()
			return false
		}
		wait := d.s.cfg.BatchLinger - time.Since(oldest)
		if n >= d.s.cfg.BatchSize || wait <= 0 {
			q.waiting--
			d.mu.Unlock()
			return true
		}
		d.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-q.wake:
		case <-d.runCtx.Done():
		}
	}
}

// retire ends a worker of q; the queue goes when its last worker does and
// nothing is waiting. d.mu is held.
func (d *dispatcher) retire(q *shopQueue) {
	q.workers--
	if q.workers == 0 && len(q.pending) == 0 {
		delete(d.shops, q.tenantID)
	}
}

// take removes the next batch from q: up to BatchSize entities not in flight,
// the newest delivery of each; older deliveries of those entities come back as
// stale. Both are empty when another worker took them first, or when the
// service is stopping (what is queued is handed back by drain).
func (d *dispatcher) take(q *shopQueue) (batch, stale []*delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.runCtx.Err() != nil {
		return nil, nil
	}
	newest := map[store.CallbackEntity]int{} // entity → index in batch
	rest := make([]*delivery, 0, len(q.pending))
	for _, dl := range q.pending {
		if q.inflight[dl.entity] {
			rest = append(rest, dl)
			continue
		}
		if i, ok := newest[dl.entity]; ok {
			if dl.newer(batch[i]) {
				stale, batch[i] = append(stale, batch[i]), dl
			} else {
				stale = append(stale, dl)
			}
			continue
		}
		if len(batch) >= d.s.cfg.BatchSize {
			rest = append(rest, dl)
			continue
		}
		newest[dl.entity] = len(batch)
		batch = append(batch, dl)
	}
	q.pending = rest
	for _, dl := range batch {
		q.inflight[dl.entity] = true
	}
	return batch, stale
}

// unhold stops the heartbeat of deliveries about to be settled (a progress
// ack after a nak would postpone the redelivery).
func (d *dispatcher) unhold(ds []*delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, dl := range ds {
		delete(d.held, dl.seq)
	}
}

// finish frees the entities of a settled batch for the next one.
func (d *dispatcher) finish(q *shopQueue, batch []*delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, dl := range batch {
		delete(q.inflight, dl.entity)
	}
}

// heartbeat tells JetStream that held messages are still being worked on, so a
// shop that is slow to answer, or a long queue in front of it, does not get
// them redelivered after AckWait.
func (d *dispatcher) heartbeat(ctx context.Context) {
	t := time.NewTicker(d.spec.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		msgs := make([]jetstream.Msg, 0, len(d.held))
		for _, m := range d.held {
			msgs = append(msgs, m)
		}
		d.mu.Unlock()
		for _, m := range msgs {
			_ = m.InProgress()
		}
	}
}

// drain waits for the running batches, then hands every delivery still queued
// back to JetStream for immediate redelivery (to another replica, or to this
// service when it starts again).
func (d *dispatcher) drain() {
	d.wg.Wait()
	d.mu.Lock()
	var left []*delivery
	for _, q := range d.shops {
		left = append(left, q.pending...)
		q.pending = nil
	}
	d.shops = map[string]*shopQueue{}
	d.held = map[uint64]jetstream.Msg{}
	d.mu.Unlock()
	for _, dl := range left {
		d.settle(dl.span, dl.msg, dl.outcome(bus.Outcome{Verdict: bus.Retry, Delay: time.Millisecond, Hold: true,
			Class: "internal", Code: CodeShuttingDown, Message: "statecallback stopped before sending"}), dl.start)
	}
}
