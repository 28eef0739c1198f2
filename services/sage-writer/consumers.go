package sagewriter

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/store"
)

// Per-tenant consumers.
//
// Each tenant has its own durable pull consumer on the SAGE stream,
// "sage-writer-<tenant>" filtering ledger.sage.<tenant>.>, with MaxAckPending
// 1. That one setting gives two guarantees that hold across any number of
// replicas, because JetStream enforces them:
//
//   - a tenant's writes are serialised (one in flight, wherever it runs), so a
//     binding never sends Sage parallel POSTs (Sage asks for none: unique
//     references and sequential numbers could clash); a held or
//     delayed write (NakWithDelay keeps it pending) holds back only its own
//     tenant;
//   - a tenant's backlog occupies at most one place in the queue for workers,
//     so the process's workers — a FIFO of at most one ready write per tenant —
//     serve tenants round-robin: a tenant with 20,000 writes waiting delays a
//     tenant with one by at most one write per busy worker.
//
// The set of tenants is read from the store every TenantScan; a consumer for a
// new tenant starts at the tenant's creation time, so it never replays another
// tenant's history.

// legacyDurable is the single consumer earlier versions used for every tenant.
const legacyDurable = "sage-writer"

// consumerPrefix names the per-tenant consumers.
const consumerPrefix = "sage-writer-"

// TenantLister is the part of the store the consumer manager needs.
type TenantLister interface {
	Tenants(ctx context.Context) ([]store.Tenant, error)
}

// tenantSpec is the consumer of one tenant.
func (s *Service) tenantSpec(tenant string) bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream: bus.StreamSage, Durable: consumerPrefix + tenant,
		FilterSubjects: []string{bus.SageTenantFilter(tenant)},
		Stage:          Stage, MaxDeliver: s.cfg.MaxDeliver, AckWait: s.cfg.AckWait, WorkTimeout: s.cfg.WorkTimeout,
		Drain: s.cfg.Drain, Workers: 1, MaxAckPending: 1,
		Tenant: tenant, Metrics: s.bus,
	}
}

// ConsumerName is the durable consumer that carries tenantID's writes.
func ConsumerName(tenantID string) string { return consumerPrefix + tenantID }

// ensureTenantConsumer returns the tenant's consumer, creating it when needed:
// from startSeq when a legacy consumer is being replaced, else from the
// tenant's creation time.
func (s *Service) ensureTenantConsumer(ctx context.Context, t store.Tenant, startSeq uint64) (jetstream.Consumer, error) {
	spec := s.tenantSpec(t.ID)
	want := spec.ConsumerConfig()
	want.MaxAckPending = 1
	want.Description = "sage-writer: Sage writes of tenant " + t.ID + " (one at a time)"
	if c, err := s.js.Consumer(ctx, spec.Stream, spec.Durable); err == nil {
		// Keep it in step with the configuration (deliver policy cannot change).
		info := c.CachedInfo()
		if info != nil && (info.Config.MaxDeliver != want.MaxDeliver || info.Config.AckWait != want.AckWait || info.Config.MaxAckPending != 1) {
			cfg := info.Config
			cfg.MaxDeliver, cfg.AckWait, cfg.MaxAckPending = want.MaxDeliver, want.AckWait, 1
			return s.js.UpdateConsumer(ctx, spec.Stream, cfg)
		}
		return c, nil
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, err
	}
	if startSeq > 0 {
		want.DeliverPolicy, want.OptStartSeq = jetstream.DeliverByStartSequencePolicy, startSeq
	} else {
		start := t.CreatedAt.Add(-10 * time.Minute)
		want.DeliverPolicy, want.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	return s.js.CreateConsumer(ctx, spec.Stream, want)
}

// consumers runs one fetch loop per tenant and keeps the set in step with the
// store.
type consumers struct {
	s  *Service
	wg sync.WaitGroup

	mu      sync.Mutex
	running map[string]context.CancelFunc
}

// legacyStart returns where per-tenant consumers must start when the legacy
// single consumer still exists (its ack floor + 1), or 0.
func (s *Service) legacyStart(ctx context.Context) (uint64, jetstream.Consumer) {
	c, err := s.js.Consumer(ctx, bus.StreamSage, legacyDurable)
	if err != nil {
		return 0, nil
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, nil
	}
	return info.AckFloor.Stream + 1, c
}

// scan starts loops for new tenants and stops those of deleted ones.
func (c *consumers) scan(ctx context.Context, lister TenantLister, startSeq uint64) error {
	tenants, err := lister.Tenants(ctx)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var errs []error
	for _, t := range tenants {
		seen[t.ID] = true
		c.mu.Lock()
		_, ok := c.running[t.ID]
		c.mu.Unlock()
		if ok {
			continue
		}
		cons, err := c.s.ensureTenantConsumer(ctx, t, startSeq)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		lctx, cancel := context.WithCancel(ctx)
		c.mu.Lock()
		c.running[t.ID] = cancel
		c.mu.Unlock()
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.s.consumeTenant(lctx, t, cons)
		}()
	}
	c.mu.Lock()
	for id, cancel := range c.running {
		if !seen[id] {
			cancel()
			delete(c.running, id)
			spec := c.s.tenantSpec(id)
			if err := c.s.js.DeleteConsumer(ctx, spec.Stream, spec.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				c.s.log.Warn("could not delete the consumer of a deleted tenant", "tenant", id, "err", err)
			}
		}
	}
	c.mu.Unlock()
	return errors.Join(errs...)
}

// consumeTenant runs the tenant's consumer on the process's shared worker
// slots. It holds at most one write (the consumer allows one in flight), keeps
// it alive while it waits for a slot and while it runs, and hands it back at
// once on shutdown. Slots are handed out first come, first served; with at
// most one write per tenant waiting, that is round-robin across tenants.
func (s *Service) consumeTenant(ctx context.Context, t store.Tenant, cons jetstream.Consumer) {
	loop := bus.Loop{JS: s.js, Consumer: cons, Spec: s.tenantSpec(t.ID), Log: s.log, Handler: s.handle,
		Slots: s.slots, InHand: 1,
		Ensure: func(ctx context.Context) (jetstream.Consumer, error) { return s.ensureTenantConsumer(ctx, t, 0) }}
	_ = loop.Run(ctx) // returns once ctx ends
}
