package bus

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// AttemptTimeout bounds one attempt of a JetStream request that is safe to
// send again: a publish that carries a Nats-Msg-Id, and a synchronous
// acknowledgement. When it passes unanswered, the request is sent again,
// until the caller's context ends.
//
// A publish is answered only by the stream's leader, an acknowledgement only
// by the consumer's. On a cluster, a request that reaches a leader as it steps
// down or stops, or whose answer is lost on the way back, is never answered:
// without an attempt bound the client waits for its whole context, which for
// a consumer's handler is its work timeout (a minute), holding a worker and,
// for the writer, its tenant's only write in flight. Sending again is safe:
// the stream stores a message id once (the repeat's answer says Duplicate),
// and acknowledging an acknowledged message changes nothing. The new leader
// answers within milliseconds.
//
// A publish without a message id gets one attempt bounded by its context only:
// sending it twice could store it twice.
const AttemptTimeout = 2 * time.Second

// unanswered reports whether err is an attempt's own deadline passing while
// ctx, the caller's, still runs.
func unanswered(ctx context.Context, err error) bool {
	return ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout))
}

// publishAttempts publishes m (opts include its message id, when msgID is not
// empty) and returns its acknowledgement, sending it again with the same id
// each time an attempt of AttemptTimeout passes unanswered.
func publishAttempts(ctx context.Context, js jetstream.JetStream, span trace.Span, m *nats.Msg, msgID string, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if msgID == "" {
		return js.PublishMsg(ctx, m, opts...)
	}
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, AttemptTimeout)
		ack, err := js.PublishMsg(actx, m, opts...)
		cancel()
		if err == nil || !unanswered(ctx, err) {
			return ack, err
		}
		span.AddEvent("publish unanswered; sending again", trace.WithAttributes(attribute.Int("messaging.nats.attempt", attempt)))
	}
}

// leaderlessPause is how long doubleAck waits before acknowledging again a
// message whose consumer has no leader (no responders): an election takes
// from milliseconds (a step-down) to seconds (a lost node).
const leaderlessPause = 100 * time.Millisecond

// doubleAck acknowledges msg and waits for JetStream to confirm it, until ctx
// ends: it sends the acknowledgement again each time an attempt of
// AttemptTimeout passes unanswered, and every leaderlessPause while the
// consumer has no leader to take it. An acknowledgement given up would bring
// the message back only after the consumer's AckWait: for the writer (one
// message in flight per tenant) holding back its tenant's next write until
// then, and after a dead letter or a re-queued copy publishing a second one.
// Settle uses it there only (confirmedAck); elsewhere a plain Ack, which costs
// no reply, is enough.
func doubleAck(ctx context.Context, msg jetstream.Msg) error {
	for {
		actx, cancel := context.WithTimeout(ctx, AttemptTimeout)
		err := msg.DoubleAck(actx)
		cancel()
		switch {
		case err == nil || ctx.Err() != nil:
			return err
		case errors.Is(err, nats.ErrNoResponders):
			if sleep(ctx, leaderlessPause) != nil {
				return err
			}
		case !unanswered(ctx, err):
			return err
		}
	}
}
