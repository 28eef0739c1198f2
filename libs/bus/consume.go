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
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/backoff"
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

// ConsumerSpec configures a durable pull consumer and the loop that runs it.
type ConsumerSpec struct {
	Stream         string
	Durable        string
	FilterSubjects []string
	// Stage names the dead letters (mapper, sage-writer, statecallback).
	Stage string
	// MaxDeliver is the number of deliveries before a retried message is
	// dead-lettered (default 10).
	MaxDeliver int
	// AckWait is how long a delivered message may go without a word from its
	// worker before JetStream redelivers it (default 5 s). The loop keeps every
	// message it holds alive with InProgress every AckWait/3, so AckWait bounds
	// how long a message held by a crashed process waits, not how long work
	// may take.
	AckWait time.Duration
	// WorkTimeout bounds one handler call (default 1 min).
	WorkTimeout time.Duration
	// Drain is how long handlers in flight may finish once the loop is told to
	// stop (default 10 s); then their contexts end and what is unfinished is
	// handed back to the stream at once. Messages not yet started are handed
	// back immediately.
	Drain time.Duration
	// Workers is how many messages are handled concurrently (default 1).
	Workers int
	// MaxAckPending bounds in-flight messages (default 4×Workers, at least 64).
	MaxAckPending int
	// Tenant, for a consumer dedicated to one tenant (the sage-writer's), is
	// the tenant its backlog is reported under (Metrics).
	Tenant string
	// Metrics, when set, record the loop's deliveries, durations and dead
	// letters, and report the consumer's state on scrape (NewMetrics).
	Metrics *Metrics
	// ConfirmAcks makes the Ack verdict wait for JetStream to confirm each
	// acknowledgement, sending it again until answered (a request and its
	// reply per message), instead of sending it once without a reply as every
	// other settlement is sent. It is always on with MaxAckPending 1 (see
	// Settle).
	ConfirmAcks bool
}

// Defaults of ConsumerSpec.
const (
	DefaultAckWait     = 5 * time.Second
	DefaultWorkTimeout = time.Minute
	DefaultDrain       = 10 * time.Second
)

func (s *ConsumerSpec) defaults() {
	if s.MaxDeliver <= 0 {
		s.MaxDeliver = 10
	}
	if s.AckWait <= 0 {
		s.AckWait = DefaultAckWait
	}
	if s.WorkTimeout <= 0 {
		s.WorkTimeout = DefaultWorkTimeout
	}
	if s.Drain <= 0 {
		s.Drain = DefaultDrain
	}
	if s.Workers <= 0 {
		s.Workers = 1
	}
	if s.MaxAckPending <= 0 {
		s.MaxAckPending = max(64, 4*s.Workers)
	}
}

// ShutdownTime is how long a loop over spec may take to stop: the fetch
// waiting at the server ends (at most FetchWait and its grace), handlers
// drain, then what finished is settled.
func (s ConsumerSpec) ShutdownTime() time.Duration {
	s.defaults()
	return max(s.Drain, FetchWait+fetchGrace) + settleTimeout
}

// FetchWait is how long one fetch waits at the server for messages; the
// server then ends it with what it has. The loop never cancels a fetch: the
// client drops what a cancelled fetch already had on its way (nats.go, v1.55),
// and JetStream only redelivers that after AckWait, a stall of every message
// caught in it. So on shutdown, and after a reconnect, the loop waits for its
// fetch to end instead: at most FetchWait plus fetchGrace (the client's own
// wait past the server's, should the server's end never arrive).
const (
	FetchWait  = 2 * time.Second
	fetchGrace = time.Second
)

// settleTimeout bounds one acknowledgement or dead-letter publish.
const settleTimeout = 5 * time.Second

// ConsumerConfig is the JetStream configuration of spec's durable consumer.
//
// JetStream itself never gives up on a message (MaxDeliver -1): Settle counts
// deliveries against spec.MaxDeliver and, on the last one, re-queues a held
// message or dead-letters a retry. Were JetStream to stop at the same count, a
// last delivery that is never settled (its process stopped or killed, or the
// loop handed it back) would be dropped by the server with neither: lost.
// With no server limit it comes back one past the budget and Settle decides.
func (s ConsumerSpec) ConsumerConfig() jetstream.ConsumerConfig {
	s.defaults()
	return jetstream.ConsumerConfig{
		Durable:        s.Durable,
		FilterSubjects: s.FilterSubjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        s.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  s.MaxAckPending,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
}

// EnsureConsumer creates or updates the durable consumer.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, spec ConsumerSpec) (jetstream.Consumer, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, spec.Stream, spec.ConsumerConfig())
	if err != nil {
		return nil, fmt.Errorf("bus: consumer %s on %s: %w", spec.Durable, spec.Stream, err)
	}
	return c, nil
}

// Consume creates or updates spec's durable consumer and runs handler over it
// with a Loop until ctx ends.
func Consume(ctx context.Context, js jetstream.JetStream, spec ConsumerSpec, log *slog.Logger, handler Handler) error {
	cons, err := EnsureConsumer(ctx, js, spec)
	if err != nil {
		return err
	}
	ensure := func(ctx context.Context) (jetstream.Consumer, error) { return EnsureConsumer(ctx, js, spec) }
	return (&Loop{JS: js, Consumer: cons, Spec: spec, Log: log, Handler: handler, Ensure: ensure}).Run(ctx)
}

// Loop is the one consume loop of every Ledger consumer. It fetches only as
// many messages as it can hold, keeps each one alive from the moment it arrives
// until it is settled, runs the handler on a worker slot and settles the
// outcome. When its context ends it stops fetching, hands back at once what it
// has not started, lets handlers in flight finish for Spec.Drain, then cancels
// them and hands back what did not finish: nothing it held waits for AckWait.
type Loop struct {
	JS       jetstream.JetStream
	Consumer jetstream.Consumer
	Spec     ConsumerSpec
	Log      *slog.Logger
	Handler  Handler
	// Slots, when set, bounds handlers across several loops (the writer's
	// per-tenant consumers share one pool of workers); else Spec.Workers.
	Slots chan struct{}
	// InHand bounds the messages the loop holds at once: fetched, waiting for
	// a slot or being handled (default 2×Spec.Workers, so the next messages
	// are at hand when a worker frees). The loop fetches again once half its
	// places are free, so that under load one pull request brings several
	// messages, or at once when it holds fewer messages than Spec.Workers, so
	// that no worker waits for a message the stream has.
	InHand int
	// Ensure, when set, creates the consumer again after a failed fetch: a
	// NATS server that lost its store (or a consumer deleted by hand) comes
	// back without it, and the loop must not wait for a restart.
	Ensure func(ctx context.Context) (jetstream.Consumer, error)
}

// fetchRetry paces fetching again after a failed fetch.
var fetchRetry = backoff.Policy{Base: 100 * time.Millisecond, Cap: 5 * time.Second, Jitter: 0.2}

// Run consumes until ctx ends and every message it held is settled or handed
// back.
func (l *Loop) Run(ctx context.Context) error {
	spec := l.Spec
	spec.defaults()
	defer spec.Metrics.Track(spec)()
	log := l.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("consumer", spec.Durable)
	slots := l.Slots
	if slots == nil {
		slots = make(chan struct{}, spec.Workers)
	}
	inHand := l.InHand
	if inHand <= 0 {
		inHand = 2 * spec.Workers
	}
	held := make(chan struct{}, inHand)
	enough := (inHand + 1) / 2

	// Handlers run on a context that outlives ctx by spec.Drain.
	work, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	stopTimer := context.AfterFunc(ctx, func() { time.AfterFunc(spec.Drain, abort) })
	defer stopTimer()
	var wg sync.WaitGroup
	defer wg.Wait()

	// Once ctx ends, what the loop holds and has not started goes back to
	// the stream, but only after its last fetch has ended at the server:
	// handed back while that fetch still waits, a message could be delivered
	// to it again (counting a delivery each time).
	fetchEnded := make(chan struct{})
	defer close(fetchEnded) // before wg.Wait: handlers wait for it

	var failures uint64
	for {
		n := reserve(ctx, held, enough, spec.Workers)
		if n == 0 {
			return nil
		}
		batch, err := l.Consumer.Fetch(n, jetstream.FetchMaxWait(FetchWait))
		if err == nil {
			for msg := range batch.Messages() {
				n--
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-held }()
					l.work(ctx, work, fetchEnded, spec, log, slots, msg)
				}()
			}
			err = batch.Error()
		}
		for range n {
			<-held
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil || errors.Is(err, context.Canceled):
			failures = 0
		default:
			failures++
			delay := fetchRetry.Delay(failures)
			log.Warn("bus: fetching failed; retrying", "err", err, "retry_in", delay.Round(time.Millisecond))
			if sleep(ctx, delay) != nil {
				return nil
			}
			if l.Ensure != nil {
				if cons, err := l.Ensure(ctx); err != nil {
					log.Warn("bus: the consumer could not be ensured; retrying", "err", err)
				} else {
					l.Consumer = cons
				}
			}
		}
	}
}

// reserve takes the free places of held for the next fetch and returns how
// many (0 once ctx ends). It waits until there are enough of them, or fewer
// than workers messages are held (a worker may be waiting): fetching as soon
// as one place frees would cost a pull request per message under load, while
// a fetch issued with a worker idle must not wait for more places to free.
func reserve(ctx context.Context, held chan struct{}, enough, workers int) int {
	n := 0
	for {
	free:
		for {
			select {
			case held <- struct{}{}:
				n++
			default:
				break free
			}
		}
		if n > 0 && (n >= enough || cap(held)-n < workers) {
			return n
		}
		select {
		case held <- struct{}{}:
			n++
		case <-ctx.Done():
			for range n {
				<-held
			}
			return 0
		}
	}
}

// work holds one message: kept alive until settled, handled on a slot, handed
// back if the loop stops first.
func (l *Loop) work(ctx, work context.Context, fetchEnded <-chan struct{}, spec ConsumerSpec, log *slog.Logger, slots chan struct{}, msg jetstream.Msg) {
	alive := keepAlive(msg, spec.AckWait/3)
	defer alive.stop()
	// giveBack returns msg to the stream once the loop's last fetch has
	// ended, keeping it alive until then.
	giveBack := func() {
		<-fetchEnded
		alive.stop()
		handBack(log, msg)
		spec.Metrics.Settled(spec.Stage, SettledHandedBack, 0)
	}
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		giveBack()
		return
	}
	if ctx.Err() != nil {
		<-slots
		giveBack()
		return
	}
	defer func() { <-slots }()
	start := time.Now()
	spec.Metrics.Received(spec.Stage, msg)
	// One consumer span per delivery: the handler runs in it, and so does the
	// settlement (a dead letter's publish is its child).
	sctx, span := StartConsumerSpan(work, spec.Stage, spec.Durable, msg)
	hctx, cancel := context.WithTimeout(sctx, spec.WorkTimeout)
	defer cancel()
	out := l.Handler(hctx, msg)
	alive.stop()
	if work.Err() != nil && out.Verdict != Ack {
		// Stopped mid-work by the drain deadline: whoever runs next redoes it.
		<-fetchEnded
		handBack(log, msg)
		EndConsumerSpan(span, out, SettledHandedBack)
		spec.Metrics.Settled(spec.Stage, SettledHandedBack, 0)
		return
	}
	settleCtx, stop := context.WithTimeout(trace.ContextWithSpan(context.WithoutCancel(ctx), span), settleTimeout)
	defer stop()
	settled := Settle(settleCtx, l.JS, spec, msg, out, log)
	EndConsumerSpan(span, out, settled)
	spec.Metrics.Settled(spec.Stage, settled, time.Since(start))
}

// lease keeps a message alive until stopped.
//
// A self-rearming time.AfterFunc (no goroutine per held message) was tried and
// kept the same contract, but in TestScaleOutOnAJetStreamCluster (cmd/ledger-dev)
// it went with a 4.5–7 s stand-still in 9 of 23 runs, against none in 28 runs
// with this goroutine (the stand-still was ingest's replay-guard request timing
// out after the step-downs; why the keep-alive matters to it is not known yet).
type lease struct {
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// keepAlive tells JetStream every interval that msg is still being worked on,
// until the lease is stopped.
func keepAlive(msg jetstream.Msg, every time.Duration) *lease {
	l := &lease{done: make(chan struct{})}
	l.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-l.done:
				return
			case <-t.C:
				_ = msg.InProgress() // a lost keep-alive only risks an early redelivery
			}
		}
	})
	return l
}

// stop ends the keep-alive; once it returns no keep-alive is sent any more, so
// it can precede the message's acknowledgement.
func (l *lease) stop() {
	l.once.Do(func() { close(l.done) })
	l.wg.Wait()
}

// handBack returns msg to the stream for immediate redelivery.
func handBack(log *slog.Logger, msg jetstream.Msg) {
	if err := msg.Nak(); err != nil {
		log.Warn("bus: handing a message back failed; it returns after the ack wait", "subject", msg.Subject(), "err", err)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Settle turns an outcome into the message's acknowledgement. It is the only
// place that acks, naks, terms or dead-letters. It returns how it settled the
// message (one of the Settled values). A dead letter is published in ctx's
// trace: give it the delivery's consumer span.
func Settle(ctx context.Context, js jetstream.JetStream, spec ConsumerSpec, msg jetstream.Msg, out Outcome, log *slog.Logger) string {
	spec.defaults()
	meta, _ := msg.Metadata()
	delivered := uint64(1)
	if meta != nil {
		delivered = meta.NumDelivered
	}
	switch out.Verdict {
	case Ack:
		// Sent once by default: a lost acknowledgement (the connection
		// drops as it is sent, or a clustered consumer has no leader) only
		// brings the message back after AckWait, to a handler that must be
		// idempotent anyway, while waiting for every confirmation costs a
		// reply per message and holds the worker for a round trip. With one
		// message in flight (MaxAckPending 1: the writer's per-tenant
		// consumers) a lost acknowledgement would hold every later message
		// for AckWait, so there it is confirmed.
		if spec.ConfirmAcks || spec.MaxAckPending == 1 {
			confirmedAck(ctx, log, spec, msg)
		} else if err := msg.Ack(); err != nil {
			log.WarnContext(ctx, "bus: ack failed; the message returns after the ack wait", "consumer", spec.Durable, "err", err)
		}
		return SettledAck
	case Retry:
		if delivered < uint64(spec.MaxDeliver) {
			delay := out.Delay
			if delay <= 0 {
				delay = time.Second
			}
			nak(ctx, log, spec, msg, delay)
			return SettledRetry
		}
		if out.Hold {
			if err := requeue(ctx, js, msg); err != nil {
				log.ErrorContext(ctx, "bus: held message not requeued; redelivering", "consumer", spec.Durable, "err", err)
				nak(ctx, log, spec, msg, out.Delay)
				return SettledRedelivered
			}
			confirmedAck(ctx, log, spec, msg)
			return SettledHeld
		}
		if err := deadLetter(ctx, js, spec, msg, meta, out, delivered); err != nil {
			log.ErrorContext(ctx, "bus: dead letter not stored; redelivering", "consumer", spec.Durable, "err", err)
			nak(ctx, log, spec, msg, 5*time.Second)
			return SettledRedelivered
		}
		confirmedAck(ctx, log, spec, msg)
		return SettledDeadLetter
	case DeadLetter:
		if err := deadLetter(ctx, js, spec, msg, meta, out, delivered); err != nil {
			log.ErrorContext(ctx, "bus: dead letter not stored; redelivering", "consumer", spec.Durable, "err", err)
			nak(ctx, log, spec, msg, 5*time.Second)
			return SettledRedelivered
		}
		if err := msg.Term(); err != nil {
			log.WarnContext(ctx, "bus: terminating a dead-lettered message failed; its redelivery finds the dead letter again", "consumer", spec.Durable, "err", err)
		}
		return SettledDeadLetter
	}
	return SettledAck
}

// confirmedAck acknowledges msg and waits for JetStream's confirmation
// (doubleAck). Settle uses it where a lost acknowledgement would cost more
// than a round trip: after a dead letter or a re-queued copy (the redelivery
// would publish a second one) and, for the Ack verdict, where the consumer
// asks for it.
func confirmedAck(ctx context.Context, log *slog.Logger, spec ConsumerSpec, msg jetstream.Msg) {
	if err := doubleAck(ctx, msg); err != nil {
		log.WarnContext(ctx, "bus: ack failed; the message will be redelivered", "consumer", spec.Durable, "err", err)
	}
}

// nak asks for redelivery after delay (at least a millisecond: a zero delay
// would mean "at once" to JetStream, which a retry never wants).
func nak(ctx context.Context, log *slog.Logger, spec ConsumerSpec, msg jetstream.Msg, delay time.Duration) {
	if err := msg.NakWithDelay(max(delay, time.Millisecond)); err != nil {
		log.WarnContext(ctx, "bus: nak failed; the message returns after the ack wait", "consumer", spec.Durable, "err", err)
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
	// The dead letter carries the context of the delivery that gave up (ctx):
	// a replay links its new trace to it.
	if _, err := Publish(ctx, js, DLQSubject(spec.Stage, out.TenantID, out.Entity), dl, ""); err != nil {
		return err
	}
	spec.Metrics.deadLettered(spec.Stage, out)
	return nil
}
