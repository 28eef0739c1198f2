package bus

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/ledgersync/ledger/libs/telemetry"
)

// Trace context on the streams.
//
// A publish is a producer span ("publish OUTBOX") whose context travels in
// the message's W3C headers (traceparent, tracestate, baggage). Each delivery
// is a consumer span (StartConsumerSpan: "mapper process") that is a child of
// that context and links to it, as the messaging conventions ask: a
// redelivery (a retried message) is a new span in the same trace, a sibling
// of the failed delivery, never a child of it. A held message requeued on its
// last delivery keeps its headers, so its copy stays in the trace too.
//
// Messages stored before the headers were authoritative carry the context in
// their traceparent field (OutboxEvent, SageWrite, SyncResult): a message
// without a traceparent header joins the trace its field names. Publish still
// fills those fields with the header's value, for readers that do not look at
// headers.

// messageContext is the remote trace context msg carries: its headers, or
// else its payload's traceparent field.
func messageContext(ctx context.Context, msg jetstream.Msg) context.Context {
	h := msg.Headers()
	if h.Get(HeaderTraceparent) != "" {
		return telemetry.Extract(ctx, h)
	}
	if sc := telemetry.ParseTraceparent(legacyTraceparent(h.Get(HeaderType), msg.Data())); sc.IsValid() {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return ctx
}

// legacyTraceparent reads the traceparent field of a payload of the named
// proto type ("" when it has none).
func legacyTraceparent(typeName string, data []byte) string {
	if typeName == "" {
		return ""
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typeName))
	if err != nil {
		return ""
	}
	fd := mt.Descriptor().Fields().ByName("traceparent")
	if fd == nil || fd.Kind() != protoreflect.StringKind {
		return ""
	}
	m := mt.New()
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, m.Interface()); err != nil {
		return ""
	}
	return m.Get(fd).String()
}

// setTraceparentField sets msg's traceparent field, when it has one and
// traceparent is not empty (a message published outside any trace keeps what
// its producer put there).
func setTraceparentField(msg proto.Message, traceparent string) {
	if traceparent == "" {
		return
	}
	m := msg.ProtoReflect()
	if fd := m.Descriptor().Fields().ByName("traceparent"); fd != nil && fd.Kind() == protoreflect.StringKind && fd.Cardinality() != protoreflect.Repeated {
		m.Set(fd, protoreflect.ValueOfString(traceparent))
	}
}

// subjectAttrs are the attributes a subject gives: stream, tenant and the
// entity (or, on OUTBOX, the event).
func subjectAttrs(subject string) []attribute.KeyValue {
	kv := []attribute.KeyValue{telemetry.AttrMessagingSystem.String("nats"), telemetry.AttrMessagingDestination.String(subject)}
	s, err := ParseSubject(subject)
	if err != nil {
		return kv
	}
	kv = append(kv, telemetry.AttrMessagingStream.String(s.Stream), telemetry.AttrTenant.String(s.Tenant))
	switch s.Stream {
	case StreamOutbox, StreamIngest:
		kv = append(kv, telemetry.AttrEvent.String(s.Entity))
	default:
		kv = append(kv, telemetry.AttrEntityType.String(s.Entity))
	}
	return kv
}

// streamOf names a subject's stream for span names (the subject itself has
// the tenant in it).
func streamOf(subject string) string {
	if s, err := ParseSubject(subject); err == nil {
		return s.Stream
	}
	return subject
}

// startPublish starts the producer span of a publish to subject and puts its
// context into h.
func startPublish(ctx context.Context, subject, msgID string, h nats.Header, links ...trace.Link) (context.Context, trace.Span) {
	kv := append(subjectAttrs(subject), telemetry.AttrMessagingOperationType.String("send"))
	if msgID != "" {
		kv = append(kv, telemetry.AttrMessagingMessageID.String(msgID))
	}
	ctx, span := telemetry.Tracer().Start(ctx, "publish "+streamOf(subject),
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(kv...), trace.WithLinks(links...))
	telemetry.Inject(ctx, h)
	return ctx, span
}

// StartConsumerSpan starts the span of one delivery of msg to stage's
// consumer durable: "<stage> process", a child of the context the message
// carries and linked to it, with the stream, subject, tenant, event or entity
// type and delivery count. The caller ends it once the message is settled.
func StartConsumerSpan(ctx context.Context, stage, durable string, msg jetstream.Msg) (context.Context, trace.Span) {
	remote := messageContext(ctx, msg)
	kv := append(subjectAttrs(msg.Subject()), telemetry.AttrMessagingOperationType.String("process"),
		telemetry.AttrStage.String(stage), telemetry.AttrMessagingConsumerGroup.String(durable))
	if meta, err := msg.Metadata(); err == nil && meta != nil {
		kv = append(kv, telemetry.AttrMessagingDeliveryCount.Int64(int64(meta.NumDelivered)),
			telemetry.AttrMessagingStreamSeq.Int64(int64(meta.Sequence.Stream)))
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(kv...)}
	if sc := trace.SpanContextFromContext(remote); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	return telemetry.Tracer().Start(remote, stage+" process", opts...)
}

// How Settle settled a message (the ledger.outcome of its consumer span).
const (
	SettledAck        = "ack"
	SettledRetry      = "retry"
	SettledHeld       = "held" // a held retry requeued as a fresh copy on its last delivery
	SettledDeadLetter = "dead_letter"
	// SettledRedelivered: the dead letter or requeue could not be stored, so
	// the message comes back instead.
	SettledRedelivered = "redelivered"
	// SettledHandedBack: the consumer stopped before finishing; the message
	// goes back to the stream unsettled.
	SettledHandedBack = "handed_back"
)

// EndConsumerSpan records how the message was settled (one of the Settled
// values) and the outcome's run and failure, and ends span.
func EndConsumerSpan(span trace.Span, out Outcome, settled string) {
	if span.IsRecording() {
		kv := []attribute.KeyValue{telemetry.AttrOutcome.String(settled)}
		if out.RunID != "" {
			kv = append(kv, telemetry.AttrRunID.String(out.RunID))
		}
		span.SetAttributes(kv...)
		if out.Verdict != Ack && settled != SettledHandedBack {
			telemetry.Fail(span, out.Class, out.Code, out.HTTPStatus)
		}
	}
	span.End()
}
