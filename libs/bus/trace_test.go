package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// installRecorder installs a provider with an in-memory exporter for the
// test (not parallel: the provider is global).
func installRecorder(t *testing.T) *tracetest.InMemoryExporter {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() {
		otel.SetTracerProvider(prev)
		_ = tp.Shutdown(context.Background())
	})
	return exp
}

func attr(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func spansNamed(exp *tracetest.InMemoryExporter, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// One trace per message across the hop: the publish is a producer span, each
// delivery a consumer span that is its child and links to it (a redelivery is
// a sibling of the failed delivery, not its child), the dead letter is
// published inside the delivery that gave up, and a stored message that
// carries its context only in its traceparent field still joins its trace.
func TestMessagesCarryTheirTrace(t *testing.T) {
	exp := installRecorder(t)
	js := setup(t)
	ctx, root := telemetry.Tracer().Start(t.Context(), "webhook")
	ev := &ledgerv1.OutboxEvent{TenantId: "tracet", Event: "invoice.created", SyncRunId: "run-1", MagentoEntityId: 42}
	if _, err := bus.Publish(ctx, js, bus.OutboxSubject("tracet", "invoice.created"), ev, "trace-1"); err != nil {
		t.Fatal(err)
	}
	if ev.GetTraceparent() == "" || telemetry.ParseTraceparent(ev.GetTraceparent()).TraceID() != root.SpanContext().TraceID() {
		t.Fatalf("Publish filled traceparent %q", ev.GetTraceparent())
	}
	root.End()

	// A message stored before headers were authoritative: only the field.
	legacy := telemetry.ParseTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	old := &ledgerv1.OutboxEvent{TenantId: "tracet", Event: "invoice.paid", SyncRunId: "run-2",
		Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	data, _ := proto.Marshal(old)
	m := &nats.Msg{Subject: bus.OutboxSubject("tracet", "invoice.paid"), Data: data, Header: nats.Header{}}
	m.Header.Set(bus.HeaderType, "ledger.v1.OutboxEvent")
	if _, err := js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}

	spec := bus.ConsumerSpec{Stream: bus.StreamOutbox, Durable: "trace-test", FilterSubjects: []string{"ledger.outbox.tracet.>"},
		Stage: "test", MaxDeliver: 5}
	consume(t, js, spec, func(ctx context.Context, msg jetstream.Msg) bus.Outcome {
		meta, _ := msg.Metadata()
		switch {
		case msg.Subject() == bus.OutboxSubject("tracet", "invoice.paid"):
			return bus.Outcome{Verdict: bus.DeadLetter, Class: "validation", Code: "test_refused", TenantID: "tracet", RunID: "run-2", Entity: "invoice"}
		case meta.NumDelivered == 1:
			return bus.Outcome{Verdict: bus.Retry, Delay: 10 * time.Millisecond, Class: "http", Code: "sage_unavailable", HTTPStatus: 503, RunID: "run-1"}
		}
		return bus.Outcome{Verdict: bus.Ack, RunID: "run-1"}
	}, func() bool { return len(spansNamed(exp, "test process")) == 3 })

	publish := spansNamed(exp, "publish OUTBOX")
	if len(publish) != 1 || publish[0].SpanKind != trace.SpanKindProducer || publish[0].Parent.SpanID() != root.SpanContext().SpanID() ||
		attr(publish[0], "ledger.tenant") != "tracet" || attr(publish[0], "ledger.event") != "invoice.created" {
		t.Fatalf("publish spans %+v", publish)
	}
	var first, retry, dead tracetest.SpanStub
	for _, s := range spansNamed(exp, "test process") {
		switch {
		case attr(s, "ledger.event") == "invoice.paid":
			dead = s
		case attr(s, "messaging.nats.message.delivery_count") == "1":
			first = s
		default:
			retry = s
		}
	}
	for _, s := range []tracetest.SpanStub{first, retry} {
		if s.SpanContext.TraceID() != root.SpanContext().TraceID() || s.Parent.SpanID() != publish[0].SpanContext.SpanID() ||
			s.SpanKind != trace.SpanKindConsumer || len(s.Links) != 1 || s.Links[0].SpanContext.SpanID() != publish[0].SpanContext.SpanID() {
			t.Fatalf("delivery span %s (delivery %s): trace %s parent %s links %v", s.Name, attr(s, "messaging.nats.message.delivery_count"),
				s.SpanContext.TraceID(), s.Parent.SpanID(), s.Links)
		}
	}
	if first.Status.Code != codes.Error || attr(first, "ledger.error.code") != "sage_unavailable" || attr(first, "ledger.outcome") != "retry" ||
		attr(first, "ledger.http_status") != "503" {
		t.Fatalf("failed delivery: status %v attrs %v", first.Status, first.Attributes)
	}
	if retry.Status.Code == codes.Error || attr(retry, "messaging.nats.message.delivery_count") != "2" || attr(retry, "ledger.outcome") != "ack" ||
		attr(retry, "ledger.run_id") != "run-1" {
		t.Fatalf("redelivery: status %v attrs %v", retry.Status, retry.Attributes)
	}
	if dead.SpanContext.TraceID() != legacy.TraceID() || dead.Parent.SpanID() != legacy.SpanID() || attr(dead, "ledger.outcome") != "dead_letter" {
		t.Fatalf("legacy message span: trace %s parent %s attrs %v", dead.SpanContext.TraceID(), dead.Parent.SpanID(), dead.Attributes)
	}
	dlq := spansNamed(exp, "publish DLQ")
	if len(dlq) != 1 || dlq[0].Parent.SpanID() != dead.SpanContext.SpanID() {
		t.Fatalf("dead-letter publish spans %+v", dlq)
	}
	stream, err := js.Stream(t.Context(), bus.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetLastMsgForSubject(t.Context(), bus.DLQSubject("test", "tracet", "invoice"))
	if err != nil {
		t.Fatal(err)
	}
	if sc := telemetry.SpanContextOf(raw.Header); sc.SpanID() != dlq[0].SpanContext.SpanID() {
		t.Fatalf("dead letter carries %v, want the DLQ publish span %v", sc, dlq[0].SpanContext)
	}
}
