package statecallback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ledgersync/ledger/libs/backoff"
	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
)

// Store is the part of libs/store the service uses.
type Store interface {
	// Tenant returns the tenant with its Magento binding (store.ErrNotFound).
	Tenant(ctx context.Context, id string) (store.Tenant, error)
	// SetMagentoStatus flips the binding to token_revoked (or back to active).
	SetMagentoStatus(ctx context.Context, tenantID, status string) error
	// NewCallbackLocker opens the pool of cross-process entity locks; the
	// callback marks are read and written under those locks.
	NewCallbackLocker(ctx context.Context, maxConns int) (*store.CallbackLocker, error)
}

// Consumer identity on the RESULTS stream.
const (
	Durable = "statecallback"
	Stage   = "statecallback"
)

// Outcomes counted by ledger_statecallback_results_total.
const (
	outcomeDelivered    = "delivered"
	outcomeStale        = "stale"
	outcomeIgnored      = "ignored"
	outcomeRetried      = "retried"
	outcomeParked       = "parked"
	outcomeDeadLettered = "dead_lettered"
)

// Service mirrors terminal sync results into the shops' sync-state tables.
type Service struct {
	cfg  Config
	st   Store
	js   jetstream.JetStream
	log  *slog.Logger
	http *HTTPTransport
	grpc *GRPCTransport
	nats *NATSTransport

	probeMu sync.Mutex
	probes  map[string]time.Time // tenant → last call to its token_revoked shop

	reg         *prometheus.Registry
	results     *prometheus.CounterVec
	sendSeconds prometheus.Histogram
	calls       *prometheus.CounterVec
	batchSize   prometheus.Histogram
	bus         *bus.Metrics // the consumer's (deliveries, latency, consumer state, dead letters)
	running     atomic.Bool

	jitter func() float64 // in [0,1); tests may pin it
}

// New returns a service; call Run to start consuming.
func New(cfg Config, st Store, js jetstream.JetStream, log *slog.Logger) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil || js == nil {
		return nil, errors.New("statecallback: a store and a JetStream context are required")
	}
	if log == nil {
		log = telemetry.Discard()
	}
	s := &Service{
		cfg: cfg, st: st, js: js, log: log,
		http:   NewHTTPTransport(cfg.HTTPTimeout, cfg.PerShop),
		grpc:   NewGRPCTransport(cfg.HTTPTimeout, cfg.GRPCPlaintext),
		nats:   &NATSTransport{JS: js, Timeout: cfg.HTTPTimeout},
		probes: map[string]time.Time{},
		reg:    telemetry.NewRegistry(),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_statecallback_results_total",
			Help: "Sync results handled, by outcome (delivered, stale, ignored, retried, parked, dead_lettered).",
		}, []string{"outcome"}),
		sendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ledger_statecallback_send_seconds",
			Help:    "Duration of one sync-state call to a shop (one POST, or one PushSyncState batch), whatever its outcome.",
			Buckets: prometheus.ExponentialBuckets(0.025, 2, 10),
		}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_statecallback_calls_total",
			Help: "Sync-state calls made to shops (one POST, or one PushSyncState batch), by result: ok, transient, rejected, unauthorized.",
		}, []string{"result"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ledger_statecallback_batch_size",
			Help:    "Results per batch handed to a shop's worker (after collapsing older results of the same entity).",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500},
		}),
		jitter: rand.Float64,
	}
	s.reg.MustRegister(s.results, s.sendSeconds, s.calls, s.batchSize)
	s.bus = bus.NewMetrics(s.reg, js, bus.MetricsOptions{})
	return s, nil
}

// ConsumerSpec is the durable consumer Run uses on the RESULTS stream.
func (s *Service) ConsumerSpec() bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream:         bus.StreamResults,
		Durable:        Durable,
		FilterSubjects: []string{bus.ResultsAll},
		Stage:          Stage,
		MaxDeliver:     s.cfg.MaxDeliver,
		// Held messages are kept alive with InProgress every AckWait/3; this
		// only decides how soon the messages of a crashed replica come back.
		AckWait: s.cfg.AckWait,
		// At shutdown a batch in flight ends after its current call (the rest
		// of it is handed back unsent), then the queue is handed back.
		Drain:         s.cfg.HTTPTimeout + 5*time.Second,
		Workers:       s.cfg.Workers,
		MaxAckPending: s.cfg.MaxAckPending,
		Metrics:       s.bus,
	}
}

// Run consumes results until ctx is done, then takes in what JetStream had
// already sent, waits for the batches in flight to settle and hands every
// queued result back to JetStream, so none waits out an ack wait.
func (s *Service) Run(ctx context.Context) error {
	spec := s.ConsumerSpec()
	cons, err := bus.EnsureConsumer(ctx, s.js, spec)
	if err != nil {
		return fmt.Errorf("statecallback: %w", err)
	}
	defer s.bus.Track(spec)() // its state on /metrics (this loop is not a bus.Loop)
	locker, err := s.st.NewCallbackLocker(ctx, s.cfg.Workers)
	if err != nil {
		return err
	}
	defer locker.Close()
	defer func() { _ = s.grpc.Close() }()
	pull := jetstream.PullMaxMessages(min(s.cfg.MaxAckPending, 2*s.cfg.Workers*s.cfg.BatchSize))
	cur := &iterator{}
	if err := cur.open(cons, pull); err != nil {
		return fmt.Errorf("statecallback: consuming %s: %w", spec.Durable, err)
	}
	// Drain, not Stop: Stop discards what JetStream has already sent to this
	// process (the pull buffer and what is on the wire), and those results
	// would come back only after AckWait. Draining lets the loop below take
	// them, and drain() hands them back with the rest of the queue.
	stopDrain := context.AfterFunc(ctx, cur.drain)
	defer stopDrain()
	// A NATS server that lost its store comes back without the consumer: on
	// every reconnect make sure it exists, and pull anew if it had to be made.
	reconnected := s.js.Conn().StatusChanged(nats.CONNECTED)
	defer s.js.Conn().RemoveStatusListener(reconnected)
	go func() {
		for range reconnected {
			if ctx.Err() != nil {
				return
			}
			if made, err := s.ensureConsumer(ctx, spec); err != nil {
				s.log.Warn("statecallback: reconnected, but the consumer could not be ensured; retrying on the next failure", "err", err)
			} else if made {
				cur.stop()
			}
		}
	}()

	d := newDispatcher(s, ctx, spec, locker)
	hbCtx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
	go d.heartbeat(hbCtx)
	defer stopHB()
	defer d.drain()

	s.running.Store(true)
	defer s.running.Store(false)
	s.log.Info("statecallback: consuming results", "stream", spec.Stream, "workers", s.cfg.Workers,
		"per_shop", s.cfg.PerShop, "batch_size", s.cfg.BatchSize, "max_deliver", spec.MaxDeliver)
	for {
		msg, err := cur.next()
		if err == nil {
			d.accept(msg)
			continue
		}
		if ctx.Err() != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				s.log.Warn("statecallback: draining the consumer failed; results still in its buffer come back after the ack wait",
					"ack_wait", spec.AckWait.String(), "err", err)
			}
			return nil // stopped, and every message received is in hand
		}
		if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			s.log.Warn("statecallback: fetching failed; retrying", "err", err)
			if _, err := s.ensureConsumer(ctx, spec); err != nil {
				s.log.Warn("statecallback: the consumer could not be ensured", "err", err)
			}
			select {
			case <-ctx.Done(): // the next call takes in what is left
				continue
			case <-time.After(time.Second):
			}
			if !cur.closed() {
				continue
			}
		}
		// The iterator was stopped because the consumer had to be made again
		// (or it closed by itself): pull anew.
		if cons, err = s.js.Consumer(ctx, spec.Stream, spec.Durable); err == nil {
			err = cur.open(cons, pull)
		}
		if err != nil {
			s.log.Warn("statecallback: could not pull from the consumer; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// ensureConsumer makes the consumer when it does not exist and says whether
// it had to.
func (s *Service) ensureConsumer(ctx context.Context, spec bus.ConsumerSpec) (made bool, err error) {
	if _, err := s.js.Consumer(ctx, spec.Stream, spec.Durable); err == nil {
		return false, nil
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, err
	}
	_, err = bus.EnsureConsumer(ctx, s.js, spec)
	return err == nil, err
}

// iterator is the pull iterator in use, replaced when the consumer is made
// again.
type iterator struct {
	mu   sync.Mutex
	it   jetstream.MessagesContext
	done bool // Next said the iterator is closed
}

func (i *iterator) open(cons jetstream.Consumer, pull jetstream.PullMessagesOpt) error {
	it, err := cons.Messages(pull)
	if err != nil {
		return err
	}
	i.mu.Lock()
	i.it, i.done = it, false
	i.mu.Unlock()
	return nil
}

func (i *iterator) current() jetstream.MessagesContext {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.it
}

func (i *iterator) next() (jetstream.Msg, error) {
	msg, err := i.current().Next()
	if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
		i.mu.Lock()
		i.done = true
		i.mu.Unlock()
	}
	return msg, err
}

func (i *iterator) closed() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.done
}

// stop ends the current iterator, discarding its buffer (its consumer is gone).
func (i *iterator) stop() { i.current().Stop() }

// drain ends the current iterator after its buffer is taken in.
func (i *iterator) drain() { i.current().Drain() }

// Registry is the service's Prometheus registry (served at /metrics).
func (s *Service) Registry() *prometheus.Registry { return s.reg }

// Handler serves /metrics (Prometheus). The runtime (libs/process) serves
// /healthz and /readyz.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", telemetry.MetricsHandler(s.reg))
	return mux
}

// backoff is the retry delay after the n-th delivery (1-based): RetryBase
// doubling per delivery, capped at RetryMax, with ±25 % jitter so a shop that
// comes back is not hit by every parked result at once.
func (s *Service) backoff(delivered uint64) time.Duration {
	d := backoff.Policy{Base: s.cfg.RetryBase, Cap: s.cfg.RetryMax, Jitter: 0.25, Rand: s.jitter}.Delay(delivered)
	return min(d, s.cfg.RetryMax)
}
