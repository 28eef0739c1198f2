package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Verdict is what a handler decided about a message.
type Verdict int

// Verdicts.
const (
	Ack        Verdict = iota // done (success, or a terminal outcome already recorded)
	Retry                     // transient: redeliver after Delay
	DeadLetter                // permanent: copy to DLQ, then Term
)

// Outcome is a handler's decision. For Retry and DeadLetter, Class/Code/Message
// describe the failure (they end up in the dead letter).
type Outcome struct {
	Verdict Verdict
	Delay   time.Duration
	// Hold marks a Retry that waits on something outside the message (a binding
	// to be re-authorised or re-paired, a shop that is down): it must never be
	// dead-lettered, so on the last allowed delivery Settle republishes a copy
	// to the same subject (whose delivery count starts again) instead.
	Hold       bool
	Class      string
	Code       string
	Source     string
	Message    string
	HTTPStatus int
	TenantID   string
	RunID      string
	Entity     string
}

// Done is the successful outcome.
func Done() Outcome { return Outcome{Verdict: Ack} }

// Handler processes one message. It must be idempotent: any message may arrive
// more than once.
type Handler func(ctx context.Context, msg jetstream.Msg) Outcome

// ConsumerSpec configures a durable pull consumer.
type ConsumerSpec struct {
	Stream         string
	Durable        string
	FilterSubjects []string
	// Stage names the dead letters (mapper, sage-writer, statecallback).
	Stage string
	// MaxDeliver is the number of deliveries before a retried message is
	// dead-lettered (default 10).
	MaxDeliver int
	// AckWait is how long a delivered message may stay unacknowledged before
	// JetStream redelivers it (default 30 s). A crashed worker's messages come back
	// after it.
	AckWait time.Duration
	// Workers is how many messages are handled concurrently (default 1).
	Workers int
	// MaxAckPending bounds in-flight messages (default 4×Workers, at least 64).
	MaxAckPending int
}

func (s *ConsumerSpec) defaults() {
	if s.MaxDeliver <= 0 {
		s.MaxDeliver = 10
	}
	if s.AckWait <= 0 {
		s.AckWait = 30 * time.Second
	}
	if s.Workers <= 0 {
		s.Workers = 1
	}
	if s.MaxAckPending <= 0 {
		s.MaxAckPending = max(64, 4*s.Workers)
	}
}

// EnsureConsumer creates or updates the durable consumer.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, spec ConsumerSpec) (jetstream.Consumer, error) {
	spec.defaults()
	c, err := js.CreateOrUpdateConsumer(ctx, spec.Stream, jetstream.ConsumerConfig{
		Durable:        spec.Durable,
		FilterSubjects: spec.FilterSubjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        spec.AckWait,
		MaxDeliver:     spec.MaxDeliver,
		MaxAckPending:  spec.MaxAckPending,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: consumer %s on %s: %w", spec.Durable, spec.Stream, err)
	}
	return c, nil
}

// Consume runs handler over the durable consumer until ctx is cancelled, then
// stops fetching and waits for in-flight handlers (their messages are settled,
// or redelivered after AckWait if the process dies first).
func Consume(ctx context.Context, js jetstream.JetStream, spec ConsumerSpec, log *slog.Logger, handler Handler) error {
	spec.defaults()
	cons, err := EnsureConsumer(ctx, js, spec)
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(spec.Workers * 2))
	if err != nil {
		return fmt.Errorf("bus: consuming %s: %w", spec.Durable, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	var wg sync.WaitGroup
	sem := make(chan struct{}, spec.Workers)
	defer wg.Wait()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			log.Warn("bus: fetching failed; retrying", "consumer", spec.Durable, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			// The handler gets a context that survives shutdown briefly, so a
			// message being processed is settled rather than abandoned.
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), spec.AckWait)
			defer cancel()
			out := handler(hctx, msg)
			Settle(hctx, js, spec, msg, out, log)
		}()
	}
}

// Settle turns an outcome into the message's acknowledgement. It is the only
// place that acks, naks, terms or dead-letters.
func Settle(ctx context.Context, js jetstream.JetStream, spec ConsumerSpec, msg jetstream.Msg, out Outcome, log *slog.Logger) {
	spec.defaults()
	meta, _ := msg.Metadata()
	delivered := uint64(1)
	if meta != nil {
		delivered = meta.NumDelivered
	}
	switch out.Verdict {
	case Ack:
		if err := msg.DoubleAck(ctx); err != nil {
			log.Warn("bus: ack failed; the message will be redelivered", "consumer", spec.Durable, "err", err)
		}
	case Retry:
		if delivered < uint64(spec.MaxDeliver) {
			delay := out.Delay
			if delay <= 0 {
				delay = time.Second
			}
			_ = msg.NakWithDelay(delay)
			return
		}
		if out.Hold {
			if err := requeue(ctx, js, msg); err != nil {
				log.Error("bus: held message not requeued; redelivering", "consumer", spec.Durable, "err", err)
				_ = msg.NakWithDelay(out.Delay)
				return
			}
			_ = msg.DoubleAck(ctx)
			return
		}
		if err := deadLetter(ctx, js, spec, msg, meta, out, delivered); err != nil {
			log.Error("bus: dead letter not stored; redelivering", "consumer", spec.Durable, "err", err)
			_ = msg.NakWithDelay(5 * time.Second)
			return
		}
		_ = msg.DoubleAck(ctx)
	case DeadLetter:
		if err := deadLetter(ctx, js, spec, msg, meta, out, delivered); err != nil {
			log.Error("bus: dead letter not stored; redelivering", "consumer", spec.Durable, "err", err)
			_ = msg.NakWithDelay(5 * time.Second)
			return
		}
		_ = msg.Term()
	}
}

// requeue publishes a copy of msg (data and headers, without its Nats-Msg-Id)
// to its own subject.
func requeue(ctx context.Context, js jetstream.JetStream, msg jetstream.Msg) error {
	m := nats.NewMsg(msg.Subject())
	m.Data = msg.Data()
	for k, v := range msg.Headers() {
		if k == nats.MsgIdHdr {
			continue
		}
		m.Header[k] = v
	}
	_, err := js.PublishMsg(ctx, m)
	return err
}

func deadLetter(ctx context.Context, js jetstream.JetStream, spec ConsumerSpec, msg jetstream.Msg, meta *jetstream.MsgMetadata, out Outcome, delivered uint64) error {
	now := timestamppb.Now()
	first := now
	if meta != nil {
		// The first delivery's time is not kept by JetStream; the original publish
		// time is the closest bound it gives.
		first = timestamppb.New(meta.Timestamp)
	}
	dl := &ledgerv1.DeadLetter{
		Stage: spec.Stage, TenantId: out.TenantID, SyncRunId: out.RunID,
		OriginalSubject: msg.Subject(), OriginalType: msg.Headers().Get(HeaderType), Original: msg.Data(),
		ErrorClass: out.Class, ErrorCode: out.Code, Source: out.Source, Message: out.Message,
		Attempts: int32(delivered), FirstFailureAt: first, LastFailureAt: now, HttpStatus: int32(out.HTTPStatus),
	}
	_, err := Publish(ctx, js, DLQSubject(spec.Stage, out.TenantID, out.Entity), dl, "", msg.Headers().Get(HeaderTraceparent))
	return err
}
