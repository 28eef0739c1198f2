package ingest

import (
	"net/http"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ledgersync/ledger/libs/bus"

	"github.com/ledgersync/ledger/libs/telemetry"
)

// Webhook outcomes, the outcome label of ledger_ingest_webhooks_total.
const (
	outcomeAccepted     = "accepted"     // recorded and published
	outcomeDuplicate    = "duplicate"    // a repeat of a live run; nothing published
	outcomeUnauthorized = "unauthorized" // 401
	outcomeRejected     = "rejected"     // 400 or 415: can never succeed
	outcomeTooLarge     = "too_large"    // 413
	outcomeUnavailable  = "unavailable"  // 503: Magento retries
)

type metrics struct {
	registry *prometheus.Registry
	handler  http.Handler
	requests *prometheus.CounterVec
	webhooks *prometheus.CounterVec
	publish  *prometheus.HistogramVec
	stage    *prometheus.HistogramVec // ledger_stage_duration_seconds{stage="ingest"}: one webhook or relayed row, whatever its answer
	relayed  *prometheus.CounterVec   // ledger_ingest_relayed_total{outcome,code}: relayed rows by outcome
	bus      *bus.Metrics             // the INGEST consume loop's (deliveries, consumer state, dead letters)
	drift    *prometheus.CounterVec   // ledger_ingest_auth_drift_checks_total{outcome}: pings that confirmed or refuted auth drift
}

// stageIngest is ingest's stage label on the metrics every stage shares.
const stageIngest = "ingest"

func newMetrics(replayEntries func() int, js jetstream.JetStream) *metrics {
	reg := telemetry.NewRegistry()
	m := &metrics{
		registry: reg,
		handler:  telemetry.MetricsHandler(reg),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_ingest_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_ingest_webhooks_total",
			Help: "Magento webhooks by outcome (accepted, duplicate, unauthorized, rejected, too_large, unavailable, overloaded) and status code.",
		}, []string{"outcome", "code"}),
		publish: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ledger_ingest_publish_duration_seconds",
			Help:    "Time from publishing an OutboxEvent to its JetStream acknowledgement, by result (ok, error).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"result"}),
	}
	m.relayed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_ingest_relayed_total",
		Help: "Outbox rows relays published on INGEST, by outcome (accepted, duplicate, unauthorized, rejected, too_large, unavailable, overloaded) and the webhook status code it stands for.",
	}, []string{"outcome", "code"})
	m.drift = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_ingest_auth_drift_checks_total",
		Help: "Pings of a shop whose webhooks kept failing their signature (INGEST_AUTH_DRIFT_THRESHOLD within INGEST_AUTH_DRIFT_WINDOW), by outcome: confirmed (the shop refused Ledger's key too; binding token_revoked), refuted (the shop accepts Ledger's key; nothing changed), unconfirmed (no useful answer).",
	}, []string{"outcome"})
	// The consume loop's metrics register the stage histogram the webhooks
	// share.
	m.bus = bus.NewMetrics(reg, js, bus.MetricsOptions{})
	m.stage = m.bus.StageDuration()
	reg.MustRegister(m.requests, m.webhooks, m.publish, m.relayed, m.drift,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ledger_ingest_replay_cache_entries",
			Help: "JWT ids remembered in the replay set shared by every ingest replica (-1 when NATS does not answer).",
		}, func() float64 { return float64(replayEntries()) }))
	return m
}

// Registry is the service's Prometheus registry (served at /metrics), for
// callers that want to add their own collectors.
func (s *Service) Registry() *prometheus.Registry { return s.metrics.registry }

func statusLabel(code int) string { return strconv.Itoa(code) }
