package sagewriter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/results"
	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Stage names the writer in attempts, dead letters and its consumer.
const Stage = "sage-writer"

// Store is the part of libs/store the writer uses.
type Store interface {
	TokenStore
	results.RunFinisher
	StartRun(ctx context.Context, id string) (store.Run, error)
	NoteRunError(ctx context.Context, id, class, message string) error
	RecordAttempt(ctx context.Context, a store.Attempt) error
	Tenant(ctx context.Context, id string) (store.Tenant, error)
	SetSageStatus(ctx context.Context, tenantID, status, businessID string) error
	Xref(ctx context.Context, tenantID, kind, magentoKey, currency string) (store.Xref, error)
	PutXref(ctx context.Context, x store.Xref) error
}

// Service consumes SageWrites from the SAGE stream and executes them in Sage.
type Service struct {
	cfg   Config
	st    Store
	js    jetstream.JetStream
	log   *slog.Logger
	oauth sage.OAuth
	http  *http.Client
	locks *businessLocks

	reg     *prometheus.Registry
	writes  *prometheus.CounterVec
	calls   *prometheus.CounterVec
	latency *prometheus.HistogramVec

	ready atomic.Bool
}

// New builds the writer. cfg's zero fields take their defaults; cfg must then
// pass Validate.
func New(cfg Config, st Store, js jetstream.JetStream, log *slog.Logger) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sage-writer: invalid configuration: %w", err)
	}
	if st == nil || js == nil {
		return nil, errors.New("sage-writer: a store and a JetStream context are required")
	}
	if log == nil {
		log = telemetry.Discard()
	}
	s := &Service{cfg: cfg, st: st, js: js, log: log, locks: newBusinessLocks(), reg: telemetry.NewRegistry()}
	s.writes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_sage_writer_writes_total",
		Help: "SageWrite deliveries by outcome (succeeded, failed, retry, paused, duplicate).",
	}, []string{"outcome"})
	s.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_sage_calls_total",
		Help: "HTTP calls to Sage (API and token endpoint) by method and status (0 = no answer).",
	}, []string{"method", "status"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ledger_sage_call_seconds", Help: "Latency of HTTP calls to Sage.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 10),
	}, []string{"method"})
	s.reg.MustRegister(s.writes, s.calls, s.latency)

	hc := &http.Client{Timeout: cfg.HTTPTimeout}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = &countingTransport{base: base, s: s}
	s.http = hc
	s.oauth = sage.OAuth{Endpoints: cfg.Endpoints, ClientID: cfg.ClientID,
		ClientSecret: cfg.ClientSecret.Reveal(), RedirectURL: cfg.RedirectURL, HTTP: hc}
	return s, nil
}

// spec is the durable consumer of the SAGE stream.
func (s *Service) spec() bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream: bus.StreamSage, Durable: "sage-writer", FilterSubjects: []string{"ledger.sage.>"},
		Stage: Stage, MaxDeliver: s.cfg.MaxDeliver, AckWait: s.cfg.AckWait, Workers: s.cfg.Workers,
	}
}

// Run consumes SageWrites until ctx is done, then finishes the writes in
// flight and returns.
func (s *Service) Run(ctx context.Context) error {
	if _, err := bus.EnsureConsumer(ctx, s.js, s.spec()); err != nil {
		return err
	}
	s.ready.Store(true)
	defer s.ready.Store(false)
	s.log.Info("sage-writer consuming", "stream", bus.StreamSage, "config", s.cfg)
	return bus.Consume(ctx, s.js, s.spec(), s.log, s.handle)
}

// Handler serves /healthz, /readyz (consuming) and /metrics.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not consuming", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", telemetry.MetricsHandler(s.reg))
	return mux
}

// handle processes one delivery of a SageWrite.
func (s *Service) handle(ctx context.Context, msg jetstream.Msg) bus.Outcome {
	delivered := uint64(1)
	if meta, err := msg.Metadata(); err == nil && meta != nil {
		delivered = meta.NumDelivered
	}
	var w ledgerv1.SageWrite
	if err := proto.Unmarshal(msg.Data(), &w); err != nil {
		tenant, entity := subjectParts(msg.Subject())
		s.log.Error("undecodable SageWrite dead-lettered", "subject", msg.Subject(), "err", err)
		s.writes.WithLabelValues("failed").Inc()
		return bus.Outcome{Verdict: bus.DeadLetter, Class: ClassSerde, Code: CodeUndecodable,
			Message: "the message is not a ledger.v1.SageWrite: " + err.Error(), TenantID: tenant, Entity: entity}
	}
	log := s.log.With("tenant", w.GetTenantId(), "run", w.GetSyncRunId(), "event", w.GetEvent(),
		"delivery", delivered, "trace_id", telemetry.TraceID(w.GetTraceparent()))
	if w.GetTenantId() == "" || w.GetSyncRunId() == "" {
		tenant, entity := subjectParts(msg.Subject())
		log.Error("SageWrite without tenant or run dead-lettered")
		s.writes.WithLabelValues("failed").Inc()
		return bus.Outcome{Verdict: bus.DeadLetter, Class: ClassSerde, Code: CodeInvalidWrite,
			Message: "the SageWrite names no tenant_id or sync_run_id", TenantID: tenant, Entity: entity}
	}
	run, err := s.st.StartRun(ctx, w.GetSyncRunId())
	if errors.Is(err, store.ErrNotFound) {
		log.Error("SageWrite for an unknown run dead-lettered")
		s.writes.WithLabelValues("failed").Inc()
		return bus.Outcome{Verdict: bus.DeadLetter, Class: ClassInternal, Code: CodeRunNotFound,
			Message: "no sync run " + w.GetSyncRunId(), TenantID: w.GetTenantId(), RunID: w.GetSyncRunId(), Entity: w.GetEntityType()}
	}
	if err != nil {
		return s.conclude(ctx, log, &w, nil, storeErr("starting the run", err), delivered)
	}
	if run.Terminal() {
		// Already finished (a redelivery after the result was recorded):
		// publish the same result again, deduplicated by its message id, in
		// case the process died between recording and publishing it.
		_, err := results.Finish(ctx, s.st, s.js, store.Outcome{RunID: run.ID, Status: run.Status, SageID: run.SageID,
			SkipReason: run.SkipReason, ErrorClass: run.ErrorClass, ErrorCode: run.ErrorCode, Message: run.LastError,
			AppliedQuirks: run.AppliedQuirks}, w.GetTraceparent())
		if err != nil {
			return bus.Outcome{Verdict: bus.Retry, Delay: time.Second, Class: ClassDatabase, Code: CodeDatabase,
				Message: err.Error(), TenantID: w.GetTenantId(), RunID: run.ID, Entity: w.GetEntityType()}
		}
		log.Info("run already finished; result republished", "status", run.Status)
		s.writes.WithLabelValues("duplicate").Inc()
		return bus.Done()
	}
	ids, err := s.execute(ctx, log, &w)
	return s.conclude(ctx, log, &w, ids, err, delivered)
}

// conclude turns the write's end into the run's result and the message's
// outcome: success finishes the run and acks; a permanent failure finishes it
// failed and dead-letters the write; a transient one notes the error and
// retries, finishing the run failed first when this was the last allowed
// delivery (the bus then dead-letters and acks it).
func (s *Service) conclude(ctx context.Context, log *slog.Logger, w *ledgerv1.SageWrite, ids map[string]string,
	err error, delivered uint64) bus.Outcome {
	base := bus.Outcome{TenantID: w.GetTenantId(), RunID: w.GetSyncRunId(), Entity: w.GetEntityType()}
	if err == nil {
		o := store.Outcome{RunID: w.GetSyncRunId(), Status: store.RunSucceeded, SageID: resultID(w, ids),
			AppliedQuirks: w.GetAppliedQuirks()}
		if _, ferr := results.Finish(ctx, s.st, s.js, o, w.GetTraceparent()); ferr != nil {
			// Everything is in Sage and in entity_xref: the next delivery
			// makes no call and only finishes the run.
			log.Warn("write done but its result was not recorded; retrying", "err", ferr)
			base.Verdict, base.Delay, base.Class, base.Code, base.Message = bus.Retry, time.Second, ClassDatabase, CodeDatabase, ferr.Error()
			return base
		}
		log.Info("write succeeded", "sage_id", o.SageID)
		s.writes.WithLabelValues("succeeded").Inc()
		return bus.Done()
	}

	d := Classify(err)
	base.Class, base.Code, base.Source, base.Message, base.HTTPStatus = d.Class, d.Code, d.Source, d.Message, d.HTTPStatus
	if d.RevokeBinding {
		if serr := s.st.SetSageStatus(ctx, w.GetTenantId(), store.StatusTokenRevoked, ""); serr != nil {
			log.Error("could not mark the Sage binding token_revoked", "err", serr)
		} else {
			log.Warn("Sage refused the refresh token; binding marked token_revoked, writes paused", "code", d.Code)
		}
	}
	last := delivered >= uint64(s.cfg.MaxDeliver)
	if d.Verdict == DeadLetter || last {
		o := store.Outcome{RunID: w.GetSyncRunId(), Status: store.RunFailed, ErrorClass: d.Class, ErrorCode: d.Code,
			Message: d.Message, AppliedQuirks: w.GetAppliedQuirks()}
		if _, ferr := results.Finish(ctx, s.st, s.js, o, w.GetTraceparent()); ferr != nil {
			log.Error("could not record the failed run; retrying", "err", ferr)
			if last {
				// The bus dead-letters it now; the run is then left running
				// until the dead letter is replayed.
				log.Error("last delivery: the run stays unfinished until the dead letter is replayed", "run", w.GetSyncRunId())
			}
			base.Verdict, base.Delay = bus.Retry, 5*time.Second
			return base
		}
		s.writes.WithLabelValues("failed").Inc()
		log.Warn("write failed", "class", d.Class, "code", d.Code, "source", d.Source, "http_status", d.HTTPStatus,
			"message", d.Message, "last_delivery", last && d.Verdict != DeadLetter)
		if d.Verdict == DeadLetter {
			base.Verdict = bus.DeadLetter
			return base
		}
		base.Verdict = bus.Retry // the bus dead-letters the last delivery and acks it
		return base
	}
	if nerr := s.st.NoteRunError(ctx, w.GetSyncRunId(), d.Class, d.Message); nerr != nil {
		log.Warn("could not note the run's error", "err", nerr)
	}
	base.Verdict, base.Delay = bus.Retry, d.delay(delivered, s.cfg.PauseDelay)
	switch {
	case d.Verdict == Pause:
		s.writes.WithLabelValues("paused").Inc()
		msg := "sage binding cannot write; write paused"
		if d.Code == CodeBindingNotActive {
			msg = "sage binding not active; write paused"
		}
		log.Info(msg, "class", d.Class, "code", d.Code, "message", d.Message, "retry_in", base.Delay)
	case d.BackPressure:
		s.writes.WithLabelValues("retry").Inc()
		log.Info("Sage is throttling; write backs off", "retry_in", base.Delay)
	default:
		s.writes.WithLabelValues("retry").Inc()
		log.Warn("write will be retried", "class", d.Class, "code", d.Code, "http_status", d.HTTPStatus,
			"message", d.Message, "retry_in", base.Delay)
	}
	return base
}

// resultID is the Sage id of the run: the operation named result_key, else the
// last operation.
func resultID(w *ledgerv1.SageWrite, ids map[string]string) string {
	if id, ok := ids[w.GetResultKey()]; ok && w.GetResultKey() != "" {
		return id
	}
	if ops := w.GetOperations(); len(ops) > 0 {
		return ids[ops[len(ops)-1].GetKey()]
	}
	return ""
}

// subjectParts reads tenant and entity from ledger.sage.<tenant>.<entity>.
func subjectParts(subject string) (tenant, entity string) {
	parts := strings.Split(subject, ".")
	if len(parts) >= 4 {
		return parts[2], parts[3]
	}
	return "", ""
}

// countingTransport counts and times every HTTP call to Sage.
type countingTransport struct {
	base http.RoundTripper
	s    *Service
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	t.s.latency.WithLabelValues(r.Method).Observe(time.Since(start).Seconds())
	status := "0"
	if err == nil {
		status = fmt.Sprint(resp.StatusCode)
	}
	t.s.calls.WithLabelValues(r.Method, status).Inc()
	return resp, err
}
