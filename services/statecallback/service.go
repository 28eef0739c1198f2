package statecallback

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

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
	// CallbackMark is when the newest result delivered for an entity finished.
	CallbackMark(ctx context.Context, tenantID, entityType string, magentoID int64) (time.Time, bool, error)
	// SetCallbackMark records a delivered result; the mark only moves forward.
	SetCallbackMark(ctx context.Context, tenantID, entityType string, magentoID int64, finishedAt time.Time, runID string) error
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
	cfg   Config
	st    Store
	js    jetstream.JetStream
	log   *slog.Logger
	tr    Transport
	locks entityLocks

	reg         *prometheus.Registry
	results     *prometheus.CounterVec
	sendSeconds prometheus.Histogram
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
	tr := cfg.Transport
	if tr == nil {
		tr = NewHTTPTransport(cfg.HTTPTimeout)
	}
	s := &Service{
		cfg: cfg, st: st, js: js, log: log, tr: tr,
		reg: telemetry.NewRegistry(),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_statecallback_results_total",
			Help: "Sync results handled, by outcome (delivered, stale, ignored, retried, parked, dead_lettered).",
		}, []string{"outcome"}),
		sendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ledger_statecallback_send_seconds",
			Help:    "Duration of one sync-state call to a shop, whatever its outcome.",
			Buckets: prometheus.ExponentialBuckets(0.025, 2, 10),
		}),
		jitter: rand.Float64,
	}
	s.reg.MustRegister(s.results, s.sendSeconds)
	return s, nil
}

// ConsumerSpec is the durable consumer Run uses on the RESULTS stream.
func (s *Service) ConsumerSpec() bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream:         bus.StreamResults,
		Durable:        Durable,
		FilterSubjects: []string{"ledger.result.>"},
		Stage:          Stage,
		MaxDeliver:     s.cfg.MaxDeliver,
		// A delivery may wait for the entity lock, send, and ping after a 401:
		// leave room for two full calls before JetStream redelivers it.
		AckWait: 2*s.cfg.HTTPTimeout + 30*time.Second,
		Workers: s.cfg.Workers,
	}
}

// Run consumes results until ctx is done, then waits for the deliveries in
// flight to settle.
func (s *Service) Run(ctx context.Context) error {
	spec := s.ConsumerSpec()
	if _, err := bus.EnsureConsumer(ctx, s.js, spec); err != nil {
		return err
	}
	s.running.Store(true)
	defer s.running.Store(false)
	s.log.Info("statecallback: consuming results", "stream", spec.Stream, "workers", spec.Workers, "max_deliver", spec.MaxDeliver)
	return bus.Consume(ctx, s.js, spec, s.log, s.handle)
}

// Handler serves /healthz (the process is up), /readyz (Run is consuming and
// the store answers) and /metrics (Prometheus).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.running.Load() {
			http.Error(w, "not consuming results yet", http.StatusServiceUnavailable)
			return
		}
		if p, ok := s.st.(interface{ Ping(context.Context) error }); ok {
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if err := p.Ping(ctx); err != nil {
				http.Error(w, "database unreachable", http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", telemetry.MetricsHandler(s.reg))
	return mux
}

// backoff is the retry delay after the n-th delivery (1-based): RetryBase
// doubling per delivery, capped at RetryMax, with ±25 % jitter so a shop that
// comes back is not hit by every parked result at once.
func (s *Service) backoff(delivered uint64) time.Duration {
	d := s.cfg.RetryMax
	if n := delivered; n >= 1 && n <= 30 {
		if b := s.cfg.RetryBase << (n - 1); b > 0 && b < d {
			d = b
		}
	}
	d = time.Duration(float64(d) * (0.75 + 0.5*s.jitter()))
	return min(d, s.cfg.RetryMax)
}
