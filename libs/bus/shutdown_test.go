package bus_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/telemetry"
)

// TestStopHandsEverythingBack stops one of two loops on a consumer again
// and again while messages keep arriving: whatever the stopped loop was
// delivered must reach the other loop at once, never after the ack wait
// (30 s here). A loop that cancelled its fetch on stop lost now and then what
// the fetch already had on its way, and JetStream redelivered that only after
// the ack wait; the loop lets its fetch end instead and hands back what it did
// not start.
func TestStopHandsEverythingBack(t *testing.T) {
	t.Parallel()
	js := connect(t)
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "STOPS", Subjects: []string{"stops.>"}}); err != nil {
		t.Fatal(err)
	}
	spec := bus.ConsumerSpec{Stream: "STOPS", Durable: "stops", FilterSubjects: []string{"stops.>"}, Stage: "test",
		Workers: 1, AckWait: 30 * time.Second, MaxDeliver: 1000}
	cons, err := bus.EnsureConsumer(ctx, js, spec)
	if err != nil {
		t.Fatal(err)
	}
	loop := func() *bus.Loop {
		return &bus.Loop{JS: js, Consumer: cons, Spec: spec, Log: telemetry.Discard(), InHand: 2,
			Handler: func(context.Context, jetstream.Msg) bus.Outcome { return bus.Done() }}
	}

	// The loop that stays.
	stayCtx, stopStaying := context.WithCancel(ctx)
	stayed := make(chan error, 1)
	go func() { stayed <- loop().Run(stayCtx) }()
	defer func() { stopStaying(); <-stayed }()

	// A steady flow, so that every stop finds a fetch being filled.
	flowCtx, stopFlow := context.WithCancel(ctx)
	var flow sync.WaitGroup
	flow.Go(func() {
		for i := 0; flowCtx.Err() == nil; i++ {
			if _, err := js.Publish(flowCtx, fmt.Sprintf("stops.%d", i), []byte("x")); err != nil && flowCtx.Err() == nil {
				t.Errorf("publish: %v", err)
				return
			}
		}
	})

	rng := rand.New(rand.NewPCG(1, 2))
	for range 25 {
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- loop().Run(runCtx) }()
		time.Sleep(time.Duration(5+rng.IntN(40)) * time.Millisecond) // a random moment of the flow, not a wait on a condition
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	stopFlow()
	flow.Wait()

	// The loop that stayed takes what the stopped ones handed back within
	// milliseconds; a message lost on the way waits out the 30 s ack wait,
	// so a third of it tells the two apart.
	var left string
	devtest.Eventually(t, "every message acknowledged", func() bool {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		left = fmt.Sprintf("%d not yet delivered, %d delivered and not acknowledged", info.NumPending, info.NumAckPending)
		return info.NumPending == 0 && info.NumAckPending == 0
	}, devtest.Within(spec.AckWait/3), devtest.Explain(func() string { return left }))
}
