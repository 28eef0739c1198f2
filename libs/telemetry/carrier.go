package telemetry

import (
	"context"
	"net/http"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// NATSCarrier carries trace context in NATS message headers (traceparent,
// tracestate, baggage), for libs/bus's publish and consume.
type NATSCarrier nats.Header

var _ propagation.TextMapCarrier = NATSCarrier{}

// Get returns the first value of key.
func (c NATSCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set replaces key's values by value.
func (c NATSCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys lists the header names.
func (c NATSCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes ctx's trace context into h (W3C, whatever the global
// propagator: it is the wire format of Ledger's streams).
func Inject(ctx context.Context, h nats.Header) {
	Propagator().Inject(ctx, NATSCarrier(h))
}

// Extract returns ctx with the remote trace context h carries.
func Extract(ctx context.Context, h nats.Header) context.Context {
	return Propagator().Extract(ctx, NATSCarrier(h))
}

// SpanContextOf is the remote span context in h (invalid when h has none).
func SpanContextOf(h nats.Header) trace.SpanContext {
	return trace.SpanContextFromContext(Extract(context.Background(), h))
}

// ParseTraceparent reads a W3C traceparent (the legacy proto fields, a
// stored run's trace); invalid when s is not one.
func ParseTraceparent(s string) trace.SpanContext {
	h := http.Header{}
	h.Set("traceparent", s)
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(h)))
}

// Traceparent is the W3C traceparent of ctx's span ("" without one). Ledger
// still fills the traceparent fields of its stream messages with it, for
// readers that do not look at headers.
func Traceparent(ctx context.Context) string {
	h := http.Header{}
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
	return h.Get("traceparent")
}

// TraceID is the trace id of ctx's span in hex ("" without one).
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

// SpanID is the span id of ctx's span in hex ("" without one).
func SpanID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasSpanID() {
		return sc.SpanID().String()
	}
	return ""
}

// SpanContextFromIDs rebuilds a span context from stored hex ids (a run's
// trace), for a link; invalid when either is missing or malformed.
func SpanContextFromIDs(traceID, spanID string) trace.SpanContext {
	tid, err1 := trace.TraceIDFromHex(traceID)
	sid, err2 := trace.SpanIDFromHex(spanID)
	if err1 != nil || err2 != nil {
		return trace.SpanContext{}
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
}
