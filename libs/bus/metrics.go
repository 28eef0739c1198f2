package bus

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ledgersync/ledger/libs/telemetry"
)

// Metrics are the consume loop's metrics in one service's registry: every
// delivery's settlement and duration, the dead letters published, and — read
// from NATS when Prometheus scrapes, cached for a few seconds — the pending,
// ack-pending and redelivered counts of the consumers the service runs, their
// per-tenant backlog (consumers dedicated to one tenant), and the depth of
// the dead letters of the service's stages. A ConsumerSpec carries them to
// Loop (which records and tracks by itself) and to Settle; a nil *Metrics
// records nothing.
//
// Every family is labelled by stage, so one PromQL expression covers every
// stage; replicas of one service report the same consumer and DLQ readings
// (aggregate those with max, not sum).
type Metrics struct {
	deliveries  *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	wait        *prometheus.HistogramVec
	deadLetters *prometheus.CounterVec
	readErrors  prometheus.Counter
	js          jetstream.JetStream
	opt         MetricsOptions

	mu      sync.Mutex
	tracked map[string]*tracked // stream/durable → consumer
	changed atomic.Bool         // tracked changed since the last reading

	// readMu serialises readings (one at a time, never holding mu, so a
	// loop starting never waits for NATS to answer a scrape).
	readMu sync.Mutex
	read   time.Time           // when the last reading was taken (zero: none)
	last   []prometheus.Metric // the last reading, served until CacheFor passes
}

// MetricsOptions tune the NATS readings of Metrics.
type MetricsOptions struct {
	// TenantSeries caps the tenants ledger_consumer_tenant_backlog_messages
	// names: the ones with the largest backlog; the rest are folded into
	// tenant="(other)" (default telemetry.DefaultTenantSeries,
	// LEDGER_METRICS_TENANTS).
	TenantSeries int
	// CacheFor is how long one reading of NATS answers scrapes (default 5 s):
	// a scrape never asks NATS more often than that, whatever the number of
	// scrapers.
	CacheFor time.Duration
	// Timeout bounds one reading (default 3 s); a reading that fails
	// reports no consumer or DLQ series and counts
	// ledger_consumer_read_errors_total.
	Timeout time.Duration
}

// Defaults of MetricsOptions.
const (
	DefaultMetricsCache   = 5 * time.Second
	DefaultMetricsTimeout = 3 * time.Second
)

type tracked struct {
	stage, stream, durable, tenant string
	refs                           int
}

var (
	descPending = prometheus.NewDesc("ledger_consumer_pending_messages",
		"Messages of the stream the stage's consumers have not delivered yet (JetStream num_pending), by stage and stream.",
		[]string{"stage", "stream"}, nil)
	descAckPending = prometheus.NewDesc("ledger_consumer_ack_pending_messages",
		"Messages delivered to the stage's consumers and not settled yet: in progress, in back-off or held (num_ack_pending).",
		[]string{"stage", "stream"}, nil)
	descRedelivered = prometheus.NewDesc("ledger_consumer_redelivered_messages",
		"Ack-pending messages that have been delivered more than once (num_redelivered).",
		[]string{"stage", "stream"}, nil)
	descTenantBacklog = prometheus.NewDesc("ledger_consumer_tenant_backlog_messages",
		"Pending plus ack-pending messages of the stage's per-tenant consumers (sage-writer), for the tenants with the largest backlog; the rest are summed under tenant=\"(other)\".",
		[]string{"stage", "tenant"}, nil)
	descDLQ = prometheus.NewDesc("ledger_dlq_messages",
		"Dead letters of the stage in the DLQ stream now (subjects ledger.dlq.<stage>.>): published and not yet replayed or removed.",
		[]string{"stage"}, nil)
)

// NewMetrics registers the loop's metrics in reg. js is read on scrape for
// the consumer and DLQ gauges.
func NewMetrics(reg prometheus.Registerer, js jetstream.JetStream, opt MetricsOptions) *Metrics {
	if opt.TenantSeries <= 0 {
		opt.TenantSeries = telemetry.DefaultTenantSeries
	}
	if opt.CacheFor <= 0 {
		opt.CacheFor = DefaultMetricsCache
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultMetricsTimeout
	}
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_consumer_deliveries_total",
			Help: "Deliveries a stage handled, by how they were settled (ack, retry, held, dead_letter, redelivered, handed_back).",
		}, []string{"stage", "outcome"}),
		duration: telemetry.NewStageDuration(),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ledger_consumer_wait_seconds",
			Help:    "Time from a message's publish to the start of its first handling by the stage (queueing, not work).",
			Buckets: telemetry.StageBuckets,
		}, []string{"stage"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_dlq_published_total",
			Help: "Dead letters the stage published to the DLQ stream, by error class and code.",
		}, []string{"stage", "class", "code"}),
		readErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ledger_consumer_read_errors_total",
			Help: "Readings of consumer and DLQ state from NATS that failed (that scrape had no ledger_consumer_* or ledger_dlq_messages series).",
		}),
		js: js, opt: opt, tracked: map[string]*tracked{},
	}
	reg.MustRegister(m.deliveries, m.duration, m.wait, m.deadLetters, m.readErrors, (*natsCollector)(m))
	return m
}

// Track adds spec's consumer to the ones whose state is reported, until the
// returned function is called. Loop.Run tracks its own consumer; a consumer
// run by other means (statecallback's) tracks itself.
func (m *Metrics) Track(spec ConsumerSpec) (untrack func()) {
	if m == nil {
		return func() {}
	}
	key := spec.Stream + "/" + spec.Durable
	m.mu.Lock()
	t := m.tracked[key]
	if t == nil {
		t = &tracked{stage: spec.Stage, stream: spec.Stream, durable: spec.Durable, tenant: spec.Tenant}
		m.tracked[key] = t
	}
	t.refs++
	m.mu.Unlock()
	m.changed.Store(true) // the next scrape reads anew
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			if t.refs--; t.refs == 0 {
				delete(m.tracked, key)
			}
			m.mu.Unlock()
			m.changed.Store(true)
		})
	}
}

// Received records the start of a delivery's handling: on the first delivery,
// how long the message waited since it was published.
func (m *Metrics) Received(stage string, msg jetstream.Msg) {
	if m == nil {
		return
	}
	meta, err := msg.Metadata()
	if err != nil || meta == nil || meta.NumDelivered != 1 || meta.Timestamp.IsZero() {
		return
	}
	m.wait.WithLabelValues(stage).Observe(max(time.Since(meta.Timestamp), 0).Seconds())
}

// Settled records one delivery: how it was settled (a Settled value) and,
// when took is positive, how long it took from the start of its handling.
func (m *Metrics) Settled(stage, settled string, took time.Duration) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(stage, settled).Inc()
	if took > 0 {
		m.duration.WithLabelValues(stage).Observe(took.Seconds())
	}
}

func (m *Metrics) deadLettered(stage string, out Outcome) {
	if m == nil {
		return
	}
	m.deadLetters.WithLabelValues(stage, codeLabel(out.Class), codeLabel(out.Code)).Inc()
}

var codeWord = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// codeLabel bounds class and code label values to the words the code makes
// (record_invalid, …): anything else is "other", never a label of its own.
func codeLabel(s string) string {
	if s == "" {
		return "none"
	}
	if codeWord.MatchString(s) {
		return s
	}
	return "other"
}

// natsCollector is Metrics as a prometheus.Collector of the NATS readings.
type natsCollector Metrics

func (c *natsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPending, descAckPending, descRedelivered, descTenantBacklog, descDLQ} {
		ch <- d
	}
}

func (c *natsCollector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	m.readMu.Lock()
	defer m.readMu.Unlock()
	if m.changed.Swap(false) || m.read.IsZero() || time.Since(m.read) >= m.opt.CacheFor {
		m.mu.Lock()
		consumers := make(map[string]tracked, len(m.tracked))
		for k, t := range m.tracked {
			consumers[k] = *t
		}
		m.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), m.opt.Timeout)
		last, err := readNATS(ctx, m.js, consumers, m.opt.TenantSeries)
		cancel()
		if err != nil {
			m.readErrors.Inc()
			last = nil
		}
		m.last, m.read = last, time.Now()
	}
	for _, x := range m.last {
		ch <- x
	}
}

// readNATS reads the tracked consumers (one consumer listing per stream,
// not one request per consumer) and the DLQ depth of their stages.
func readNATS(ctx context.Context, js jetstream.JetStream, consumers map[string]tracked, tenantSeries int) ([]prometheus.Metric, error) {
	if len(consumers) == 0 {
		return nil, nil
	}
	type sums struct{ pending, ackPending, redelivered float64 }
	type key struct{ stage, stream string }
	total := map[key]*sums{}
	backlog := map[string]map[string]float64{} // stage → tenant → messages
	streams := map[string]bool{}
	stages := map[string]bool{}
	for _, t := range consumers {
		streams[t.stream] = true
		stages[t.stage] = true
		if total[key{t.stage, t.stream}] == nil {
			total[key{t.stage, t.stream}] = &sums{}
		}
	}
	for stream := range streams {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return nil, err
		}
		list := st.ListConsumers(ctx)
		for info := range list.Info() {
			t, ok := consumers[stream+"/"+info.Name]
			if !ok {
				continue
			}
			s := total[key{t.stage, t.stream}]
			s.pending += float64(info.NumPending)
			s.ackPending += float64(info.NumAckPending)
			s.redelivered += float64(info.NumRedelivered)
			if t.tenant != "" {
				if backlog[t.stage] == nil {
					backlog[t.stage] = map[string]float64{}
				}
				backlog[t.stage][t.tenant] += float64(info.NumPending) + float64(info.NumAckPending)
			}
		}
		if err := list.Err(); err != nil {
			return nil, err
		}
	}
	var out []prometheus.Metric
	for k, s := range total {
		out = append(out,
			prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, s.pending, k.stage, k.stream),
			prometheus.MustNewConstMetric(descAckPending, prometheus.GaugeValue, s.ackPending, k.stage, k.stream),
			prometheus.MustNewConstMetric(descRedelivered, prometheus.GaugeValue, s.redelivered, k.stage, k.stream))
	}
	for stage, tenants := range backlog {
		for tenant, n := range telemetry.TopTenants(tenants, tenantSeries) {
			out = append(out, prometheus.MustNewConstMetric(descTenantBacklog, prometheus.GaugeValue, n, stage, tenant))
		}
	}
	dlq, err := js.Stream(ctx, StreamDLQ)
	if err != nil {
		return nil, err
	}
	for stage := range stages {
		n, err := countSubjects(ctx, dlq, "ledger.dlq."+token(stage)+".>")
		if err != nil {
			return nil, err
		}
		out = append(out, prometheus.MustNewConstMetric(descDLQ, prometheus.GaugeValue, float64(n), stage))
	}
	return out, nil
}

// countSubjects is how many messages of stream match filter: the sum of the
// per-subject counts of the stream's state (one request, paged by the
// server), never reading a message.
func countSubjects(ctx context.Context, s jetstream.Stream, filter string) (uint64, error) {
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return 0, err
	}
	var n uint64
	for subj, c := range info.State.Subjects {
		if strings.HasPrefix(subj, strings.TrimSuffix(filter, ">")) {
			n += c
		}
	}
	return n, nil
}

// StageDuration is the ledger_stage_duration_seconds histogram m registered,
// for a service that also times work outside a consume loop under its stage
// (ingest's webhooks beside its relayed messages): one histogram, registered
// once.
func (m *Metrics) StageDuration() *prometheus.HistogramVec { return m.duration }
