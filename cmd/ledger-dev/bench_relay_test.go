package main

// The benchmark's baselines on the same NATS server as the pipeline: a bare
// JetStream relay of the pipeline's shape (publish with acks, then three hops
// of consume → publish → ack), and bare publishing with acks (ingest's half).

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// relayHops is the pipeline's number of consume → publish → ack steps
// (mapper, sage-writer; statecallback consumes and acks, its publish is the
// HTTP callback): ingest's publish plus three hops, as the issue measured it.
const relayHops = 3

// relayBatch is how many messages each hop fetches at once, and the async
// publish window.
const relayBatch = 100

// runRelay publishes n messages of size bytes with acks into the first of
// relayHops+1 file streams and relays them hop by hop (each hop fetches a
// batch, publishes every message to the next stream, waits for the acks, then
// acknowledges the batch). It returns the time from the first publish until the
// last stream holds all n.
func runRelay(ctx context.Context, natsURL string, n, size int) (time.Duration, error) {
	nc, err := nats.Connect(natsURL, nats.Name("bench-relay"))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(relayBatch*4))
	if err != nil {
		return 0, err
	}
	streams := make([]jetstream.Stream, relayHops+1)
	for i := range streams {
		name := fmt.Sprintf("BENCH_RELAY_%d", i)
		_ = js.DeleteStream(ctx, name)
		if streams[i], err = js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{fmt.Sprintf("bench.relay.%d", i)},
			Storage: jetstream.FileStorage, Replicas: 1}); err != nil {
			return 0, err
		}
	}
	defer func() {
		for i := range streams {
			_ = js.DeleteStream(context.WithoutCancel(ctx), fmt.Sprintf("BENCH_RELAY_%d", i))
		}
	}()
	hopCtx, stopHops := context.WithCancel(ctx)
	defer stopHops()
	var wg sync.WaitGroup
	var hopErr firstError
	for i := range relayHops {
		cons, err := streams[i].CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "hop", AckPolicy: jetstream.AckExplicitPolicy,
			MaxAckPending: relayBatch * 10})
		if err != nil {
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := relayHop(hopCtx, js, cons, fmt.Sprintf("bench.relay.%d", i+1)); err != nil && hopCtx.Err() == nil {
				hopErr.set(err)
			}
		}()
	}
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	start := time.Now()
	for range n {
		if _, err := js.PublishAsync("bench.relay.0", payload, jetstream.WithStallWait(time.Minute)); err != nil {
			return 0, err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	last := streams[relayHops]
	for {
		info, err := last.Info(ctx)
		if err != nil {
			return 0, err
		}
		if info.State.Msgs >= uint64(n) {
			break
		}
		if e := hopErr.get(); e != nil {
			return 0, e
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	took := time.Since(start)
	stopHops()
	wg.Wait()
	return took, nil
}

func relayHop(ctx context.Context, js jetstream.JetStream, cons jetstream.Consumer, next string) error {
	for ctx.Err() == nil {
		batch, err := cons.Fetch(relayBatch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return err
		}
		var msgs []jetstream.Msg
		var acks []jetstream.PubAckFuture
		for m := range batch.Messages() {
			f, err := js.PublishAsync(next, m.Data(), jetstream.WithStallWait(time.Minute))
			if err != nil {
				return err
			}
			msgs, acks = append(msgs, m), append(acks, f)
		}
		for _, f := range acks {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		for _, m := range msgs {
			if err := m.Ack(); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return err
		}
	}
	return ctx.Err()
}

// runPublish publishes n messages of size bytes with acks from workers
// goroutines, each waiting for its ack before the next publish (as ingest
// answers a webhook only once its publish is acknowledged), and returns the
// time it took.
func runPublish(ctx context.Context, natsURL string, n, size, workers int) (time.Duration, error) {
	nc, err := nats.Connect(natsURL, nats.Name("bench-publish"))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	const name = "BENCH_PUBLISH"
	_ = js.DeleteStream(ctx, name)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"bench.publish"}, Storage: jetstream.FileStorage, Replicas: 1}); err != nil {
		return 0, err
	}
	defer func() { _ = js.DeleteStream(context.WithoutCancel(ctx), name) }()
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr firstError
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if _, err := js.Publish(ctx, "bench.publish", payload); err != nil {
					firstErr.set(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if e := firstErr.get(); e != nil {
		return 0, e
	}
	return took, nil
}

// firstError keeps the first error set.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
