package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// Publish marshals msg and publishes it to subject, waiting for the stream's
// acknowledgement. msgID, when not empty, becomes Nats-Msg-Id so a retried publish
// is stored once. traceparent, when not empty, travels in the W3C header.
func Publish(ctx context.Context, js jetstream.JetStream, subject string, msg proto.Message, msgID, traceparent string) (*jetstream.PubAck, error) {
	data, err := proto.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("bus: marshal %T: %w", msg, err)
	}
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	m.Header.Set(HeaderType, string(msg.ProtoReflect().Descriptor().FullName()))
	if traceparent != "" {
		m.Header.Set(HeaderTraceparent, traceparent)
	}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := js.PublishMsg(ctx, m, opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: publish to %s: %w", subject, err)
	}
	return ack, nil
}
