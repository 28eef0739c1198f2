package bus_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/telemetry"
)

// BenchmarkLoop consumes b.N messages, published beforehand, through a Loop
// whose handler does nothing (work=0), or waits a millisecond as a handler
// waiting on a database or an HTTP call would (work=1ms: workers then finish
// one at a time, as in the services), so what is measured is the loop's own
// traffic: msgs/s, and the NATS wire messages the server counted while the
// loop consumed (in: pull requests and acknowledgements from the client; out:
// deliveries, replies and fetch ends to it), per consumed message. confirm is
// ConsumerSpec.ConfirmAcks.
//
//	go test -run '^$' -bench BenchmarkLoop -benchtime 20000x ./libs/bus/
func BenchmarkLoop(b *testing.B) {
	for _, c := range []struct {
		workers int
		work    time.Duration
	}{{1, 0}, {4, 0}, {16, 0}, {4, time.Millisecond}, {16, time.Millisecond}} {
		for _, confirm := range []bool{false, true} {
			b.Run(fmt.Sprintf("workers=%d/work=%s/confirm=%t", c.workers, c.work, confirm), func(b *testing.B) {
				benchmarkLoop(b, c.workers, c.work, confirm)
			})
		}
	}
}

func benchmarkLoop(b *testing.B, workers int, work time.Duration, confirm bool) {
	srv := devtest.NATSServer(b)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}}); err != nil {
		b.Fatal(err)
	}
	for i := range b.N {
		if _, err := js.PublishAsync(fmt.Sprintf("bench.%d", i%64), []byte("x")); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		b.Fatal(ctx.Err())
	}
	spec := bus.ConsumerSpec{Stream: "BENCH", Durable: "bench", FilterSubjects: []string{"bench.>"}, Stage: "bench",
		Workers: workers, ConfirmAcks: confirm}
	cons, err := bus.EnsureConsumer(ctx, js, spec)
	if err != nil {
		b.Fatal(err)
	}
	var handled atomic.Int64
	all := make(chan struct{})
	loop := &bus.Loop{JS: js, Consumer: cons, Spec: spec, Log: telemetry.Discard(),
		Handler: func(context.Context, jetstream.Msg) bus.Outcome {
			if work > 0 {
				time.Sleep(work) // the handler's work itself, not a wait on a condition
			}
			if handled.Add(1) == int64(b.N) {
				close(all)
			}
			return bus.Done()
		}}

	before := varz(b, srv)
	b.ResetTimer()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- loop.Run(runCtx) }()
	start := time.Now()
	select {
	case <-all:
	case <-ctx.Done():
		b.Fatal(ctx.Err())
	}
	// Every acknowledgement has reached the server once it reports none
	// pending: only then are the wire counts complete.
	devtest.Eventually(b, "every message acknowledged", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	took := time.Since(start)
	b.StopTimer()
	after := varz(b, srv)
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	// The Info requests just made are two messages each way apiece at most;
	// they are part of the count, a negligible one at thousands of messages.
	n := float64(b.N)
	b.ReportMetric(n/took.Seconds(), "msgs/s")
	b.ReportMetric(float64(after.InMsgs-before.InMsgs)/n, "wire-in/msg")
	b.ReportMetric(float64(after.OutMsgs-before.OutMsgs)/n, "wire-out/msg")
}

func varz(b *testing.B, srv *server.Server) *server.Varz {
	b.Helper()
	v, err := srv.Varz(nil)
	if err != nil {
		b.Fatal(err)
	}
	return v
}
