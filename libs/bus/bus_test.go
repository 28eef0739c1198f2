package bus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

func TestMain(m *testing.M) { devtest.Main(m) }

// connect returns a JetStream context on a fresh test server.
func connect(t *testing.T) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(devtest.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// setup is connect with Ledger's streams.
func setup(t *testing.T) jetstream.JetStream {
	t.Helper()
	js := connect(t)
	if err := bus.EnsureStreams(context.Background(), js, 1); err != nil {
		t.Fatal(err)
	}
	return js
}

func msgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(context.Background())
	return info.State.Msgs
}

// consume runs handler until stop returns true, then stops the consumer.
func consume(t *testing.T, js jetstream.JetStream, spec bus.ConsumerSpec, handler bus.Handler, stop func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- bus.Consume(ctx, js, spec, telemetry.Discard(), handler) }()
	defer func() {
		cancel()
		<-done
	}()
	devtest.Eventually(t, "consumer "+spec.Durable+" to finish its work", stop)
}

// settled reports whether JetStream holds nothing more for the durable
// consumer: no message left to deliver and none delivered but unacknowledged,
// so none can be delivered again.
func settled(t *testing.T, js jetstream.JetStream, stream, durable string) bool {
	t.Helper()
	c, err := js.Consumer(t.Context(), stream, durable)
	if err != nil {
		return false
	}
	info, err := c.Info(t.Context())
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
}

func publish(t *testing.T, js jetstream.JetStream, subject string) {
	t.Helper()
	evt := &ledgerv1.OutboxEvent{TenantId: "t1", Event: "invoice.created", SyncRunId: "r1"}
	ack, err := bus.Publish(context.Background(), js, subject, evt, "id-1")
	if err != nil || ack.Duplicate {
		t.Fatalf("publish: %v %+v", err, ack)
	}
	// The same Nats-Msg-Id is stored once.
	if ack, _ := bus.Publish(context.Background(), js, subject, evt, "id-1"); !ack.Duplicate {
		t.Fatal("a repeated Nats-Msg-Id must be deduplicated")
	}
}

func TestRetryThenDeadLetterOnLastDelivery(t *testing.T) {
	t.Parallel()
	js := setup(t)
	subject := bus.OutboxSubject("t1", "invoice.created")
	publish(t, js, subject)
	var calls atomic.Int32
	spec := bus.ConsumerSpec{Stream: bus.StreamOutbox, Durable: "retry", Stage: "mapper", MaxDeliver: 3}
	consume(t, js, spec, func(context.Context, jetstream.Msg) bus.Outcome {
		calls.Add(1)
		return bus.Outcome{Verdict: bus.Retry, Delay: 10 * time.Millisecond, Class: "provider", Code: "boom", TenantID: "t1", RunID: "r1", Entity: "invoice"}
	}, func() bool { return msgs(t, js, bus.StreamDLQ) == 1 })
	if calls.Load() != 3 {
		t.Fatalf("handled %d times, want 3 (MaxDeliver)", calls.Load())
	}
	s, _ := js.Stream(context.Background(), bus.StreamDLQ)
	raw, err := s.GetLastMsgForSubject(context.Background(), bus.DLQSubject("mapper", "t1", "invoice"))
	if err != nil {
		t.Fatal(err)
	}
	var dl ledgerv1.DeadLetter
	if err := proto.Unmarshal(raw.Data, &dl); err != nil {
		t.Fatal(err)
	}
	if dl.OriginalSubject != subject || dl.Attempts != 3 || dl.ErrorCode != "boom" || dl.OriginalType != "ledger.v1.OutboxEvent" {
		t.Fatalf("dead letter: %+v", &dl)
	}
	var orig ledgerv1.OutboxEvent
	if err := proto.Unmarshal(dl.Original, &orig); err != nil || orig.SyncRunId != "r1" {
		t.Fatalf("original not kept: %v %+v", err, &orig)
	}
}

func TestPermanentFailureIsDeadLetteredAtOnce(t *testing.T) {
	t.Parallel()
	js := setup(t)
	publish(t, js, bus.OutboxSubject("t1", "invoice.created"))
	var calls atomic.Int32
	spec := bus.ConsumerSpec{Stream: bus.StreamOutbox, Durable: "perm", Stage: "mapper", MaxDeliver: 5}
	consume(t, js, spec, func(context.Context, jetstream.Msg) bus.Outcome {
		calls.Add(1)
		return bus.Outcome{Verdict: bus.DeadLetter, Class: "validation", Code: "bad", TenantID: "t1", Entity: "invoice"}
	}, func() bool {
		// Once the Term has reached JetStream, nothing is left to redeliver.
		return msgs(t, js, bus.StreamDLQ) == 1 && settled(t, js, bus.StreamOutbox, spec.Durable)
	})
	if calls.Load() != 1 {
		t.Fatalf("handled %d times, want 1", calls.Load())
	}
}

func TestHeldRetryIsNeverDeadLettered(t *testing.T) {
	t.Parallel()
	js := setup(t)
	publish(t, js, bus.OutboxSubject("t1", "invoice.created"))
	var calls atomic.Int32
	spec := bus.ConsumerSpec{Stream: bus.StreamOutbox, Durable: "hold", Stage: "mapper", MaxDeliver: 2}
	consume(t, js, spec, func(context.Context, jetstream.Msg) bus.Outcome {
		if calls.Add(1) < 5 {
			return bus.Outcome{Verdict: bus.Retry, Hold: true, Delay: 10 * time.Millisecond, TenantID: "t1"}
		}
		return bus.Done()
	}, func() bool { return calls.Load() >= 5 })
	if n := msgs(t, js, bus.StreamDLQ); n != 0 {
		t.Fatalf("held message dead-lettered (%d)", n)
	}
}

func TestParseSubjectRoundTrips(t *testing.T) {
	for subject, want := range map[string]bus.Subject{
		bus.OutboxSubject("t1", "invoice.created"): {Stream: bus.StreamOutbox, Tenant: "t1", Entity: "invoice.created"},
		bus.IngestSubject("t1", "invoice.paid"):    {Stream: bus.StreamIngest, Tenant: "t1", Entity: "invoice.paid"},
		bus.SageSubject("t1", "invoice"):           {Stream: bus.StreamSage, Tenant: "t1", Entity: "invoice"},
		bus.ResultSubject("t1", "creditmemo"):      {Stream: bus.StreamResults, Tenant: "t1", Entity: "creditmemo"},
		bus.DLQSubject("mapper", "t1", "invoice"):  {Stream: bus.StreamDLQ, Stage: "mapper", Tenant: "t1", Entity: "invoice"},
	} {
		if got, err := bus.ParseSubject(subject); err != nil || got != want {
			t.Errorf("ParseSubject(%q) = %+v, %v; want %+v", subject, got, err, want)
		}
	}
	for _, bad := range []string{"", "ledger", "ledger.sage.t1", "other.sage.t1.invoice", "ledger.dlq.mapper.t1", "ledger.nope.t1.x"} {
		if _, err := bus.ParseSubject(bad); err == nil {
			t.Errorf("ParseSubject(%q) accepted", bad)
		}
	}
	if got := bus.SageTenantFilter("a.b"); got != "ledger.sage.a_b.>" {
		t.Errorf("a tenant id with a dot escaped the token rule: %s", got)
	}
}
