package mapper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
)

// Store is the part of libs/store the mapper uses.
type Store interface {
	StartRunFrom(ctx context.Context, id string, seq uint64) (store.Run, error)
	FinishRun(ctx context.Context, o store.Outcome) (store.Run, error)
	NoteRunError(ctx context.Context, id, class, message string) error
	TenantWithVersions(ctx context.Context, id string) (store.Tenant, store.DataVersions, error)
	SetMagentoStatus(ctx context.Context, tenantID, status string) error
	Policy(ctx context.Context, tenantID string) ([]byte, error)
	RefCache(ctx context.Context, tenantID, kind string) ([]byte, time.Time, error)
	// Unit is a run's links reads and its mapping record in one
	// transaction (the mapper's one commit per run).
	Unit() *store.Unit
	Ping(ctx context.Context) error
}

// Consumer settings of the mapper's durable consumer on OUTBOX.
const (
	Durable    = "mapper"
	Stage      = "mapper"
	MaxDeliver = 10
)

// Retry delays.
const (
	// LongRetry is how long a message waits when the tenant's Magento binding
	// is not usable (auth drift, not paired): an operator has to act first.
	LongRetry = 5 * time.Minute
	// MaxBackoff caps the exponential back-off of transient failures.
	MaxBackoff = 5 * time.Minute
)

// Service consumes accepted Magento events and publishes SageWrites.
type Service struct {
	cfg     Config
	st      Store
	js      jetstream.JetStream
	log     *slog.Logger
	http    *http.Client
	running atomic.Bool
	// data keeps each tenant's parsed policy and reference data (tenantdata.go).
	data tenantData

	registry *prometheus.Registry
	outcomes *prometheus.CounterVec
	duration *prometheus.HistogramVec
	fetches  *prometheus.HistogramVec
	bus      *bus.Metrics // the consume loop's (deliveries, latency, consumer state, dead letters)
}

// New builds the service. cfg is defaulted and validated; st, js and log are
// required.
func New(cfg Config, st Store, js jetstream.JetStream, log *slog.Logger) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil || js == nil || log == nil {
		return nil, errors.New("mapper: New needs a store, a JetStream context and a logger")
	}
	hc := cfg.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: cfg.HTTPTimeout}
	}
	hc = telemetry.HTTPClient(hc) // every canonical fetch is a client span
	s := &Service{cfg: cfg, st: st, js: js, log: log, http: hc, registry: telemetry.NewRegistry()}
	s.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_mapper_events_total",
		Help: "Outbox events handled by the mapper, by event and outcome (published, skipped, failed, retry, acked).",
	}, []string{"event", "outcome"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ledger_mapper_event_duration_seconds", Help: "Time to handle one outbox event.",
		Buckets: prometheus.DefBuckets,
	}, []string{"event"})
	s.fetches = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ledger_mapper_magento_fetch_seconds", Help: "Canonical fetches from Magento, by HTTP status (0 = no answer).",
		Buckets: prometheus.DefBuckets,
	}, []string{"status"})
	s.registry.MustRegister(s.outcomes, s.duration, s.fetches)
	s.bus = bus.NewMetrics(s.registry, js, bus.MetricsOptions{})
	return s, nil
}

// Spec is the consumer the mapper runs on the OUTBOX stream.
func (s *Service) Spec() bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream: bus.StreamOutbox, Durable: Durable, FilterSubjects: []string{bus.OutboxAll},
		Stage: Stage, Workers: s.cfg.Workers, MaxDeliver: MaxDeliver, Metrics: s.bus,
		// An event may need several canonical fetches (the invoice, its
		// customer, its products) before its SageWrite is published.
		WorkTimeout: max(bus.DefaultWorkTimeout, 4*s.cfg.HTTPTimeout),
	}
}

// Run consumes OUTBOX until ctx is done, then waits for in-flight events to be
// settled. The streams must exist (bus.EnsureStreams).
func (s *Service) Run(ctx context.Context) error {
	s.running.Store(true)
	defer s.running.Store(false)
	s.log.Info("mapper: consuming", "stream", bus.StreamOutbox, "durable", Durable, "workers", s.cfg.Workers)
	if err := bus.Consume(ctx, s.js, s.Spec(), s.log, s.Handle); err != nil {
		return fmt.Errorf("mapper: %w", err)
	}
	return nil
}

// Registry is the service's Prometheus registry (served at /metrics).
func (s *Service) Registry() *prometheus.Registry { return s.registry }

// Handler serves /metrics (Prometheus). The runtime (libs/process) serves
// /healthz and /readyz.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", telemetry.MetricsHandler(s.registry))
	return mux
}
