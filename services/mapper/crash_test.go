package mapper

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// TestCrashBetweenPublishAndAckStoresOneSageWrite plays the consume loop by
// hand: the mapper publishes an event's SageWrite and "dies" before
// acknowledging, so the OUTBOX message is delivered again. JetStream must hold
// one SageWrite for the run (the redelivery publishes the same Nats-Msg-Id);
// once the writer has failed the run, a further redelivery must neither
// restart it nor publish again; an operator's retry (a new OUTBOX message)
// publishes a new SageWrite.
func TestCrashBetweenPublishAndAckStoresOneSageWrite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st, js := newInfra(t)
	svc, err := New(Config{Workers: 1, HTTPTimeout: 5 * time.Second}, st, js, telemetry.Discard())
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{st: st, js: js}
	shop := s.shop(t, "crash", nil)
	_, inv := loadFixture(t, "registered_customer")
	if _, err := shop.CreateInvoice(inv.Invoice); err != nil {
		t.Fatal(err)
	}
	run := s.publish(t, "crash", "invoice.created", inv.MagentoID)
	cons, err := bus.EnsureConsumer(ctx, js, svc.Spec())
	if err != nil {
		t.Fatal(err)
	}
	next := func() jetstream.Msg {
		t.Helper()
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			return m
		}
		t.Fatalf("no OUTBOX message: %v", b.Error())
		return nil
	}
	writes := func() uint64 {
		t.Helper()
		str, err := js.Stream(ctx, bus.StreamSage)
		if err != nil {
			t.Fatal(err)
		}
		subj := bus.SageSubject("crash", "invoice")
		info, err := str.Info(ctx, jetstream.WithSubjectFilter(subj))
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Subjects[subj]
	}

	first := next()
	if out := svc.Handle(ctx, first); out.Verdict != bus.Ack {
		t.Fatalf("first delivery: %+v", out)
	}
	// The process dies here: no ack. The message comes back (after the ack
	// wait; Nak is the same redelivery without the wait).
	if err := first.Nak(); err != nil {
		t.Fatal(err)
	}
	again := next()
	if meta, _ := again.Metadata(); meta.NumDelivered != 2 {
		t.Fatalf("want the same message delivered again, got delivery %d", meta.NumDelivered)
	}
	if out := svc.Handle(ctx, again); out.Verdict != bus.Ack {
		t.Fatalf("redelivery: %+v", out)
	}
	if n := writes(); n != 1 {
		t.Fatalf("JetStream holds %d SageWrites for the run after a redelivery, want 1", n)
	}

	// The writer fails the run; the OUTBOX message is redelivered once more.
	if _, err := st.FinishRun(ctx, store.Outcome{RunID: run, Status: store.RunFailed, ErrorClass: "validation", ErrorCode: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := again.Nak(); err != nil {
		t.Fatal(err)
	}
	third := next()
	if out := svc.Handle(ctx, third); out.Verdict != bus.Ack {
		t.Fatalf("redelivery after the failure: %+v", out)
	}
	if r, _ := st.Run(ctx, run); r.Status != store.RunFailed {
		t.Fatalf("a redelivery restarted the failed run: %s", r.Status)
	}
	if n := writes(); n != 1 {
		t.Fatalf("JetStream holds %d SageWrites after a redelivery of a failed run, want 1", n)
	}
	_ = third.Ack()

	// An operator's retry is a new message: a new attempt and a new SageWrite.
	if _, err := st.ResetRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	ev := &ledgerv1.OutboxEvent{TenantId: "crash", Event: "invoice.created", IdempotencyKey: "invoice.created:" + itoa(inv.MagentoID),
		SyncRunId: run, MagentoEntityId: inv.MagentoID}
	if _, err := bus.Publish(ctx, js, bus.OutboxSubject("crash", "invoice.created"), ev, "retry:"+run); err != nil {
		t.Fatal(err)
	}
	if out := svc.Handle(ctx, next()); out.Verdict != bus.Ack {
		t.Fatalf("retry: %+v", out)
	}
	if n := writes(); n != 2 {
		t.Fatalf("JetStream holds %d SageWrites after an operator's retry, want 2", n)
	}
}
