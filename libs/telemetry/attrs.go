package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Span attributes an operator filters by. Values are identifiers and codes,
// never secrets (api keys, tokens, Authorization headers) or payload bodies.
const (
	AttrTenant          = attribute.Key("ledger.tenant")
	AttrEvent           = attribute.Key("ledger.event")
	AttrEntityType      = attribute.Key("ledger.entity_type")
	AttrMagentoEntityID = attribute.Key("ledger.magento_entity_id")
	AttrRunID           = attribute.Key("ledger.run_id")
	AttrSageResource    = attribute.Key("ledger.sage.resource")
	AttrStage           = attribute.Key("ledger.stage")
	// AttrOutcome is how a message was settled: ack, retry, held,
	// dead_letter, handed_back.
	AttrOutcome    = attribute.Key("ledger.outcome")
	AttrErrorClass = attribute.Key("ledger.error.class")
	AttrErrorCode  = attribute.Key("ledger.error.code")
	// AttrHTTPStatus is the status of the call a failure came from (client
	// spans carry http.response.status_code themselves).
	AttrHTTPStatus = attribute.Key("ledger.http_status")
	// AttrLinkReason says why a span links to another trace: replay (an
	// operator's dead-letter replay), retry (an operator's RetryRuns).
	AttrLinkReason = attribute.Key("ledger.link.reason")

	// Messaging attributes of the OpenTelemetry semantic conventions.
	AttrMessagingSystem        = attribute.Key("messaging.system")
	AttrMessagingDestination   = attribute.Key("messaging.destination.name")
	AttrMessagingOperationType = attribute.Key("messaging.operation.type")
	AttrMessagingConsumerGroup = attribute.Key("messaging.consumer.group.name")
	AttrMessagingDeliveryCount = attribute.Key("messaging.nats.message.delivery_count")
	AttrMessagingStream        = attribute.Key("messaging.nats.stream")
	AttrMessagingStreamSeq     = attribute.Key("messaging.nats.stream_sequence")
	AttrMessagingMessageID     = attribute.Key("messaging.message.id")
)

// Annotate adds attributes to ctx's span (nothing when it records nothing).
func Annotate(ctx context.Context, kv ...attribute.KeyValue) {
	trace.SpanFromContext(ctx).SetAttributes(kv...)
}

// Fail marks span failed with an error class and code (and the HTTP status of
// the call the failure came from, when there was one). The status description
// is "class/code": messages may quote outside data, so they stay in logs.
func Fail(span trace.Span, class, code string, httpStatus int) {
	if !span.IsRecording() {
		return
	}
	kv := []attribute.KeyValue{AttrErrorClass.String(class), AttrErrorCode.String(code)}
	if httpStatus != 0 {
		kv = append(kv, AttrHTTPStatus.Int(httpStatus))
	}
	span.SetAttributes(kv...)
	desc := class
	if code != "" {
		desc += "/" + code
	}
	span.SetStatus(codes.Error, desc)
}
