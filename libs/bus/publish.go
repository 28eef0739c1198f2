package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/telemetry"
)

// Publish marshals msg and publishes it to subject, waiting for the stream's
// acknowledgement. msgID, when not empty, becomes Nats-Msg-Id so a retried publish
// is stored once. The publish is a producer span ("publish OUTBOX") whose trace
// context travels in the message's W3C headers, and in msg's traceparent field
// when it has one (for readers without headers; Publish sets it). links (an
// operator's replay or retry linking to the run's original trace) are added to
// the span.
func Publish(ctx context.Context, js jetstream.JetStream, subject string, msg proto.Message, msgID string, links ...trace.Link) (*jetstream.PubAck, error) {
	m := &nats.Msg{Subject: subject, Header: nats.Header{}}
	m.Header.Set(HeaderType, string(msg.ProtoReflect().Descriptor().FullName()))
	ctx, span := startPublish(ctx, subject, msgID, m.Header, links...)
	defer span.End()
	setTraceparentField(msg, m.Header.Get(HeaderTraceparent))
	data, err := proto.Marshal(msg)
	if err != nil {
		span.SetStatus(codes.Error, "marshal failed")
		return nil, fmt.Errorf("bus: marshal %T: %w", msg, err)
	}
	m.Data = data
	return publish(ctx, js, span, m, msgID)
}

// PublishMsg publishes m (its data and headers already set) as Publish does:
// a producer span whose context replaces any trace context in m's headers.
func PublishMsg(ctx context.Context, js jetstream.JetStream, m *nats.Msg, msgID string, links ...trace.Link) (*jetstream.PubAck, error) {
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	ctx, span := startPublish(ctx, m.Subject, msgID, m.Header, links...)
	defer span.End()
	return publish(ctx, js, span, m, msgID)
}

func publish(ctx context.Context, js jetstream.JetStream, span trace.Span, m *nats.Msg, msgID string) (*jetstream.PubAck, error) {
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := publishAttempts(ctx, js, span, m, msgID, opts...)
	if err != nil {
		span.SetStatus(codes.Error, "publish failed")
		return nil, fmt.Errorf("bus: publish to %s: %w", m.Subject, err)
	}
	span.SetAttributes(telemetry.AttrMessagingStreamSeq.Int64(int64(ack.Sequence)), attribute.Bool("messaging.nats.duplicate", ack.Duplicate))
	return ack, nil
}
