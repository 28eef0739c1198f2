package admin

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
)

// operatorSpan starts the span of an operator's action on one run or dead
// letter (a retry, a recovery, a replay). It is part of the operator's own
// trace (the RPC's) and links to the trace it acts on, original, when that
// one is known: a replayed or retried run is never a child of its finished
// first trace, nor an orphan. reason is the link's ledger.link.reason.
func operatorSpan(ctx context.Context, name, reason string, original trace.SpanContext, kv ...attribute.KeyValue) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{trace.WithAttributes(kv...)}
	if original.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: original,
			Attributes: []attribute.KeyValue{telemetry.AttrLinkReason.String(reason)}}))
	}
	return telemetry.Tracer().Start(ctx, name, opts...)
}

// runAttrs are a run's span attributes.
func runAttrs(r store.Run) []attribute.KeyValue {
	return []attribute.KeyValue{telemetry.AttrTenant.String(r.TenantID), telemetry.AttrRunID.String(r.ID),
		telemetry.AttrEvent.String(r.Event), telemetry.AttrEntityType.String(r.EntityType),
		telemetry.AttrMagentoEntityID.Int64(r.MagentoEntityID)}
}

// traceLink is the tracing UI's page of a trace: LEDGER_TRACING_UI_URL with
// {trace_id} replaced ("" when either is missing).
func traceLink(uiURL, traceID string) string {
	if uiURL == "" || traceID == "" {
		return ""
	}
	return strings.ReplaceAll(uiURL, "{trace_id}", traceID)
}
