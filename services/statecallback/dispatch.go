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
// batches: at most PerShop batches of one shop and Workers batches overall in
// flight, one entity in at most one batch at a time, and only the newest result
// of an entity in a batch (the older ones are stale and acknowledged unsent).
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

// shopQueue is one shop's waiting deliveries.
type shopQueue struct {
	tenantID string
	pending  []*delivery
	inflight map[store.CallbackEntity]bool // entities in a running batch
	workers  int
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
		q = &shopQueue{tenantID: tenant, inflight: map[store.CallbackEntity]bool{}}
		d.shops[tenant] = q
	}
	q.pending = append(q.pending, dl)
	spawn := q.workers < d.s.cfg.PerShop && !q.inflight[dl.entity]
	if spawn {
		q.workers++
		d.wg.Add(1)
	}
	d.mu.Unlock()
	if spawn {
		go d.work(q)
	}
}

// work runs batches of one shop until nothing it may take is left.
func (d *dispatcher) work(q *shopQueue) {
	defer d.wg.Done()
	if l := d.s.cfg.BatchLinger; l > 0 {
		// Let a burst of results gather into one batch.
		select {
		case <-time.After(l):
		case <-d.runCtx.Done():
		}
	}
	for {
		d.sem <- struct{}{}
		batch, stale := d.take(q)
		if len(batch) == 0 && len(stale) == 0 {
			<-d.sem
			return
		}
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
			d.s.deliverBatch(ctx, d.locker, &batchRun{tenantID: q.tenantID, all: batch,
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

// take removes the next batch from q: up to BatchSize entities not in flight,
// the newest delivery of each; older deliveries of those entities come back as
// stale. It retires the worker (under the same lock) when there is nothing to
// take, or when the service is stopping.
func (d *dispatcher) take(q *shopQueue) (batch, stale []*delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.runCtx.Err() != nil {
		q.workers--
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
	if len(batch) == 0 && len(stale) == 0 {
		q.workers--
		if q.workers == 0 && len(q.pending) == 0 {
			delete(d.shops, q.tenantID)
		}
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
