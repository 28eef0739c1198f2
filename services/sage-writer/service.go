package sagewriter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/backoff"
	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/results"
	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/sage/budget"
	"github.com/ledgersync/ledger/libs/sage/lifecycle"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Stage names the writer in attempts, dead letters and its consumer.
const Stage = "sage-writer"

// Store is the part of libs/store the writer uses.
type Store interface {
	lifecycle.KeepAliveStore
	lifecycle.RevokeStore
	TenantLister
	results.RunFinisher
	Tenant(ctx context.Context, id string) (store.Tenant, error)
	SetSageStatus(ctx context.Context, tenantID, status, businessID string) error
	// NewUnits opens the pool of the deliveries' transactions (Delivery),
	// one connection per worker.
	NewUnits(ctx context.Context, maxConns int) (*store.Units, error)
}

// Delivery is what one delivery reads and writes, as one transaction from
// its start to its conclusion: a store.Unit from the writer's own pool
// (store.Units), whose connection it holds while it calls Sage. Close it on
// every way out.
type Delivery interface {
	// The run's start and every link its operations may have, in one
	// round trip; the start's row lock on the run is held until the
	// conclusion.
	StartStageWithLinks(ctx context.Context, id, stage, tenantID string, keys []store.XrefKey) (store.Run, bool, map[store.XrefKey]store.Xref, error)
	Attempts(ctx context.Context, runID string) ([]store.Attempt, error)
	// The delivery's journal (attempts, links) with the run's conclusion,
	// or alone (an ambiguous create's checkpoint), committing the
	// transaction.
	FinishRunWith(ctx context.Context, o store.Outcome, j store.Journal) (store.Run, error)
	NoteRunErrorWith(ctx context.Context, id, class, message string, j store.Journal) error
	WriteJournal(ctx context.Context, j store.Journal) error
	// Close rolls back what was not committed.
	Close()
}

// journaled finishes a run and writes its delivery's journal in the same
// transaction (a results.RunFinisher for results.Finish, which publishes the
// result only after that transaction committed).
type journaled struct {
	d Delivery
	j store.Journal
}

func (f journaled) FinishRun(ctx context.Context, o store.Outcome) (store.Run, error) {
	return f.d.FinishRunWith(ctx, o, f.j)
}

// Service consumes SageWrites from the SAGE stream and executes them in Sage.
type Service struct {
	cfg    Config
	st     Store
	js     jetstream.JetStream
	log    *slog.Logger
	oauth  sage.OAuth
	http   *http.Client
	locks  *businessLocks
	budget *budget.Budget
	slots  chan struct{} // worker slots, handed out first come, first served
	// units are the deliveries' transactions while Run runs (Delivery);
	// open, when set, opens deliveries instead (tests count their calls).
	units atomic.Pointer[store.Units]
	open  func() Delivery

	reg       *prometheus.Registry
	writes    *prometheus.CounterVec
	calls     *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	waits     *prometheus.HistogramVec
	throttled *prometheus.CounterVec
	refreshes *prometheus.CounterVec
	bus       *bus.Metrics // the consume loops' (deliveries, latency, consumer state, dead letters)

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
	bud, err := budget.New(cfg.Budget)
	if err != nil {
		return nil, fmt.Errorf("sage-writer: rate budget: %w", err)
	}
	s := &Service{cfg: cfg, st: st, js: js, log: log, locks: newBusinessLocks(), budget: bud,
		slots: make(chan struct{}, cfg.Workers), reg: telemetry.NewRegistry()}
	s.writes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_sage_writer_writes_total",
		Help: "SageWrite deliveries by outcome (succeeded, failed, retry, paused, duplicate).",
	}, []string{"outcome"})
	s.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_sage_calls_total",
		Help: "HTTP calls to Sage (API and token endpoint) by resource (contacts, sales_invoices, token, …), method and status (0 = no answer).",
	}, []string{"resource", "method", "status"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ledger_sage_call_seconds", Help: "Latency of HTTP calls to Sage.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2, 10),
	}, []string{"method"})
	s.waits = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ledger_sage_budget_wait_seconds", Help: "Time calls waited for Sage's rate budget (business pacing, app concurrency).",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	}, []string{"kind"})
	s.throttled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_sage_throttled_total", Help: "429 answers from Sage, which slow their business down.",
	}, []string{"kind"})
	s.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_sage_oauth_refreshes_total",
		Help: "Sage token refreshes by outcome: ok, refused (4xx, e.g. invalid_grant: the binding becomes token_revoked), failed (5xx or no answer).",
	}, []string{"outcome"})
	s.reg.MustRegister(s.writes, s.calls, s.latency, s.waits, s.throttled, s.refreshes)
	s.bus = bus.NewMetrics(s.reg, js, bus.MetricsOptions{TenantSeries: cfg.MetricsTenants})
	bud.Observe = budgetMetrics{s}

	hc := &http.Client{Timeout: cfg.HTTPTimeout}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	// Outermost: metrics and the business check see every attempt; inside
	// it the budget paces API calls (not the token endpoint); innermost, each
	// call that goes out is a client span (time spent waiting for the budget
	// is not Sage's).
	hc.Transport = &countingTransport{s: s, tokenURL: endpointOf(cfg.Endpoints.TokenURL),
		base: &budget.Transport{Base: telemetry.HTTPTransport(base), Budget: bud, APIPrefix: apiPrefix(cfg)}}
	s.http = hc
	s.oauth = sage.OAuth{Endpoints: cfg.Endpoints, ClientID: cfg.ClientID,
		ClientSecret: cfg.ClientSecret.Reveal(), RedirectURL: cfg.RedirectURL, HTTP: hc}
	return s, nil
}

// Run consumes SageWrites until ctx is done, then finishes the writes in
// flight and returns. It runs one consumer per tenant (consumers.go), the
// keep-alive refresh of idle bindings, and re-reads the tenants every
// TenantScan.
func (s *Service) Run(ctx context.Context) error {
	// The app-wide limits are shared by the writers running now.
	fleet, err := s.joinFleet(ctx)
	if err != nil {
		return nil // stopped while joining
	}
	var fleetDone sync.WaitGroup
	fleetDone.Go(func() { fleet.Run(ctx) })
	defer fleetDone.Wait()
	if s.open == nil {
		units, err := s.st.NewUnits(ctx, s.cfg.Workers)
		if err != nil {
			return fmt.Errorf("sage-writer: %w", err)
		}
		s.units.Store(units)
		defer units.Close() // after the consumers below have stopped
	}
	startSeq, legacy := s.legacyStart(ctx)
	c := &consumers{s: s, running: map[string]context.CancelFunc{}}
	if err := c.scan(ctx, s.st, startSeq); err != nil {
		c.stopAll()
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return fmt.Errorf("sage-writer: starting the tenants' consumers: %w", err)
	}
	if legacy != nil {
		// Every tenant now has its own consumer starting where the shared one
		// had acknowledged everything; the shared one goes.
		if err := s.js.DeleteConsumer(ctx, bus.StreamSage, legacyDurable); err != nil {
			s.log.Warn("could not delete the legacy shared consumer", "consumer", legacyDurable, "err", err)
		} else {
			s.log.Info("replaced the shared consumer by per-tenant consumers", "start_seq", startSeq)
		}
	}
	s.ready.Store(true)
	defer s.ready.Store(false)
	s.log.Info("sage-writer consuming", "stream", bus.StreamSage, "config", s.cfg)

	var wg sync.WaitGroup
	if s.cfg.KeepAliveEvery > 0 {
		ka := s.keepAlive()
		wg.Go(func() { ka.Run(ctx) })
	}
	t := time.NewTicker(s.cfg.TenantScan)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.wg.Wait()
			wg.Wait()
			return nil
		case <-t.C:
			if err := c.scan(ctx, s.st, 0); err != nil && ctx.Err() == nil {
				s.log.Warn("re-reading the tenants failed; next scan retries", "err", err)
			}
			s.budget.Forget()
		}
	}
}

// joinRetry paces joining the fleet again: creating its buckets on a
// JetStream cluster under load can time out, and a writer must not give up
// for that (nor write outside the shared limits).
var joinRetry = backoff.Policy{Base: 500 * time.Millisecond, Cap: 10 * time.Second, Jitter: 0.2}

// joinFleet takes this writer's seat in the fleet, trying again until it
// succeeds or ctx ends (then it returns ctx's error).
func (s *Service) joinFleet(ctx context.Context) (*budget.Fleet, error) {
	id := writerID()
	for attempt := uint64(1); ; attempt++ {
		fleet, err := budget.JoinFleet(ctx, s.js, s.budget, id, s.cfg.NATSReplicas, s.log)
		switch {
		case err == nil:
			return fleet, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		}
		delay := joinRetry.Delay(attempt)
		s.log.WarnContext(ctx, "could not join the writers sharing Sage's app limits; retrying (nothing is written meanwhile)",
			"err", err, "retry_in", delay.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// writerID names this process in the fleet: host, pid and a random suffix.
func writerID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", strings.NewReplacer(".", "_", "*", "_", ">", "_").Replace(host), os.Getpid(), hex.EncodeToString(b[:]))
}

// keepAlive is the idle-binding refresher of this writer.
func (s *Service) keepAlive() *lifecycle.KeepAlive {
	return &lifecycle.KeepAlive{Store: s.st, OAuth: s.oauth, Log: s.log.With("task", "keepalive"),
		Every: s.cfg.KeepAliveEvery, ExpiresWithin: s.cfg.KeepAliveExpiresWithin, RotatedBefore: s.cfg.KeepAliveRotatedBefore}
}

// KeepAlivePass refreshes every idle binding once (Run does it every
// KeepAliveEvery); exported for tests and operators' tooling.
func (s *Service) KeepAlivePass(ctx context.Context) (lifecycle.PassResult, error) {
	return s.keepAlive().Pass(ctx)
}

func (c *consumers) stopAll() {
	c.mu.Lock()
	for _, cancel := range c.running {
		cancel()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// Registry is the service's Prometheus registry (served at /metrics).
func (s *Service) Registry() *prometheus.Registry { return s.reg }

// Handler serves /metrics (Prometheus). The runtime (libs/process) serves
// /healthz and /readyz.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
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
		s.log.ErrorContext(ctx, "undecodable SageWrite dead-lettered", "subject", msg.Subject(), "err", err)
		s.writes.WithLabelValues("failed").Inc()
		return bus.Outcome{Verdict: bus.DeadLetter, Class: ClassSerde, Code: CodeUndecodable,
			Message: "the message is not a ledger.v1.SageWrite: " + err.Error(), TenantID: tenant, Entity: entity}
	}
	// Log lines written with ctx carry the trace id (the consumer span's).
	log := s.log.With("tenant", w.GetTenantId(), "run", w.GetSyncRunId(), "event", w.GetEvent(), "delivery", delivered)
	telemetry.Annotate(ctx, telemetry.AttrRunID.String(w.GetSyncRunId()), telemetry.AttrEvent.String(w.GetEvent()),
		telemetry.AttrMagentoEntityID.Int64(w.GetMagentoEntityId()))
	if w.GetTenantId() == "" || w.GetSyncRunId() == "" {
		tenant, entity := subjectParts(msg.Subject())
		log.ErrorContext(ctx, "SageWrite without tenant or run dead-lettered")
		s.writes.WithLabelValues("failed").Inc()
		return bus.Outcome{Verdict: bus.DeadLetter, Class: ClassSerde, Code: CodeInvalidWrite,
			Message: "the SageWrite names no tenant_id or sync_run_id", TenantID: tenant, Entity: entity}
	}
	d := s.delivery()
	defer d.Close()
	run, earlier, links, err := d.StartStageWithLinks(ctx, w.GetSyncRunId(), Stage, w.GetTenantId(), xrefKeys(&w))
	if errors.Is(err, store.ErrNotFound) {
		log.ErrorContext(ctx, "SageWrite for an unknown run dead-lettered")
		s.writes.WithLabelValues("failed").Inc()
		return bus.Outcome{Verdict: bus.DeadLetter, Class: ClassInternal, Code: CodeRunNotFound,
			Message: "no sync run " + w.GetSyncRunId(), TenantID: w.GetTenantId(), RunID: w.GetSyncRunId(), Entity: w.GetEntityType()}
	}
	if err != nil {
		return s.conclude(ctx, log, d, &w, written{}, storeErr("starting the run", err), delivered)
	}
	if run.Terminal() {
		// Already finished (a redelivery after the result was recorded):
		// publish the same result again, deduplicated by its message id, in
		// case the process died between recording and publishing it. The
		// delivery's transaction ends first: its start holds the run's row.
		d.Close()
		_, err := results.Finish(ctx, s.st, s.js, store.Outcome{RunID: run.ID, Status: run.Status, SageID: run.SageID,
			SkipReason: run.SkipReason, ErrorClass: run.ErrorClass, ErrorCode: run.ErrorCode, Message: run.LastError,
			AppliedQuirks: run.AppliedQuirks, Change: run.Change})
		if err != nil {
			return bus.Outcome{Verdict: bus.Retry, Delay: time.Second, Class: ClassDatabase, Code: CodeDatabase,
				Message: err.Error(), TenantID: w.GetTenantId(), RunID: run.ID, Entity: w.GetEntityType()}
		}
		log.InfoContext(ctx, "run already finished; result republished", "status", run.Status)
		s.writes.WithLabelValues("duplicate").Inc()
		return bus.Done()
	}
	wr, err := s.execute(ctx, log, d, &w, run, links, earlier, delivered >= uint64(s.cfg.MaxDeliver))
	return s.conclude(ctx, log, d, &w, wr, err, delivered)
}

// delivery opens the transaction of one delivery.
func (s *Service) delivery() Delivery {
	if s.open != nil {
		return s.open()
	}
	return s.units.Load().Unit()
}

// conclude turns the write's end into the run's result and the message's
// outcome: success finishes the run and acks; a permanent failure finishes it
// failed and dead-letters the write; a transient one notes the error and
// retries, finishing the run failed first when this was the last allowed
// delivery (the bus then dead-letters and acks it).
func (s *Service) conclude(ctx context.Context, log *slog.Logger, dv Delivery, w *ledgerv1.SageWrite, wr written,
	err error, delivered uint64) bus.Outcome {
	base := bus.Outcome{TenantID: w.GetTenantId(), RunID: w.GetSyncRunId(), Entity: w.GetEntityType()}
	if err == nil {
		o := store.Outcome{RunID: w.GetSyncRunId(), Status: store.RunSucceeded, SageID: resultID(w, wr.ids),
			AppliedQuirks: w.GetAppliedQuirks(), Change: wr.change}
		if _, ferr := results.Finish(ctx, journaled{dv, wr.journal}, s.js, o); ferr != nil {
			// Everything is in Sage. If the transaction committed (only the
			// publish failed) the next delivery makes no call and only
			// finishes the run; if not, entity_xref lacks this delivery's
			// links, and the next delivery's POSTs carry the same
			// idempotency_ids, which Sage replays (package doc).
			log.WarnContext(ctx, "write done but its result was not recorded; retrying", "err", ferr)
			base.Verdict, base.Delay, base.Class, base.Code, base.Message = bus.Retry, time.Second, ClassDatabase, CodeDatabase, ferr.Error()
			return base
		}
		log.InfoContext(ctx, "write succeeded", "sage_id", o.SageID, "change", o.Change)
		s.writes.WithLabelValues("succeeded").Inc()
		return bus.Done()
	}

	d := Classify(err)
	base.Class, base.Code, base.Source, base.Message, base.HTTPStatus = d.Class, d.Code, d.Source, d.Message, d.HTTPStatus
	if d.RevokeBinding {
		if serr := lifecycle.MarkRevoked(ctx, s.st, w.GetTenantId()); serr != nil {
			log.ErrorContext(ctx, "could not mark the Sage binding token_revoked", "err", serr)
		} else {
			log.WarnContext(ctx, "Sage refused the refresh token; binding marked token_revoked, writes held until re-authorised", "code", d.Code)
		}
	}
	// A pause (auth drift) and back-pressure (429, rate budget) wait on
	// something outside the write: held, never dead-lettered.
	hold := d.Verdict == Pause || d.BackPressure
	last := delivered >= uint64(s.cfg.MaxDeliver) && !hold
	if d.Verdict == DeadLetter || last {
		o := store.Outcome{RunID: w.GetSyncRunId(), Status: store.RunFailed, ErrorClass: d.Class, ErrorCode: d.Code,
			Message: d.Message, AppliedQuirks: w.GetAppliedQuirks()}
		if _, ferr := results.Finish(ctx, journaled{dv, wr.journal}, s.js, o); ferr != nil {
			log.ErrorContext(ctx, "could not record the failed run; retrying", "err", ferr)
			if last {
				// The bus dead-letters it now; the run is then left running
				// until the dead letter is replayed.
				log.ErrorContext(ctx, "last delivery: the run stays unfinished until the dead letter is replayed", "run", w.GetSyncRunId())
			}
			base.Verdict, base.Delay = bus.Retry, 5*time.Second
			return base
		}
		s.writes.WithLabelValues("failed").Inc()
		log.ErrorContext(ctx, "write failed; dead-lettered", "class", d.Class, "code", d.Code, "source", d.Source, "http_status", d.HTTPStatus,
			"message", d.Message, "attempts", delivered, "last_delivery", last && d.Verdict != DeadLetter)
		if d.Verdict == DeadLetter {
			base.Verdict = bus.DeadLetter
			return base
		}
		base.Verdict = bus.Retry // the bus dead-letters the last delivery and acks it
		return base
	}
	if nerr := dv.NoteRunErrorWith(ctx, w.GetSyncRunId(), d.Class, d.Message, wr.journal); nerr != nil {
		log.WarnContext(ctx, "could not note the run's error and record its attempts and links", "err", nerr)
	}
	base.Verdict, base.Hold = bus.Retry, hold
	base.Delay = d.delay(delivered, schedule{base: s.cfg.RetryBase, limit: s.cfg.RetryCap, pause: s.cfg.PauseDelay})
	if d.BackPressure {
		if b := s.budget.Delay(businessOf(err)); b > base.Delay {
			base.Delay = b
		}
	}
	switch {
	case d.Verdict == Pause:
		s.writes.WithLabelValues("paused").Inc()
		msg := "sage binding cannot write; write held"
		if d.Code == CodeBindingNotActive {
			msg = "sage binding not active; write held"
		}
		log.InfoContext(ctx, msg, "class", d.Class, "code", d.Code, "message", d.Message, "retry_in", base.Delay)
	case d.BackPressure:
		s.writes.WithLabelValues("throttled").Inc()
		log.InfoContext(ctx, "Sage rate budget: write held", "message", d.Message, "retry_in", base.Delay)
	default:
		// The failed attempt was logged at WARN with its envelope already.
		s.writes.WithLabelValues("retry").Inc()
		log.InfoContext(ctx, "write will be retried", "class", d.Class, "code", d.Code, "http_status", d.HTTPStatus,
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

// subjectParts reads tenant and entity from ledger.sage.<tenant>.<entity>
// (empty when the subject is not one).
func subjectParts(subject string) (tenant, entity string) {
	s, _ := bus.ParseSubject(subject)
	return s.Tenant, s.Entity
}

// countingTransport counts and times every HTTP call to Sage and detects an
// answer for another business than the one requested (X-Business differs:
// the lead business changed or access moved), which fails the call.
type countingTransport struct {
	base     http.RoundTripper
	s        *Service
	tokenURL string // the token endpoint (endpointOf): its calls are the writer's refreshes
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	t.s.latency.WithLabelValues(r.Method).Observe(time.Since(start).Seconds())
	status := "0"
	var bp *budget.BackPressure
	if errors.As(err, &bp) {
		return nil, err // refused before sending: not a call
	}
	if err == nil {
		status = fmt.Sprint(resp.StatusCode)
	}
	t.s.calls.WithLabelValues(telemetry.SageResourceLabel(r.URL.Path), r.Method, status).Inc()
	if t.tokenURL != "" && endpointOf(r.URL.String()) == t.tokenURL {
		t.s.refreshes.WithLabelValues(refreshOutcome(resp, err)).Inc()
	}
	if err != nil {
		return nil, err
	}
	want, got := r.Header.Get("X-Business"), resp.Header.Get("X-Business")
	if want != "" && got != "" && got != want && resp.StatusCode/100 == 2 {
		_ = resp.Body.Close()
		return nil, &businessChanged{requested: want, answered: got,
			requestID: firstNonEmpty(resp.Header.Get("X-Request-Id"), resp.Header.Get("x_request_id"))}
	}
	return resp, nil
}

// endpointOf is a URL without its query and fragment, to compare endpoints.
func endpointOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

// refreshOutcome is the outcome label of one call to the token endpoint.
func refreshOutcome(resp *http.Response, err error) string {
	switch {
	case err != nil || resp.StatusCode >= 500:
		return "failed"
	case resp.StatusCode >= 400:
		return "refused"
	}
	return "ok"
}

// businessChanged is an answer for another business than the one requested.
type businessChanged struct{ requested, answered, requestID string }

func (e *businessChanged) Error() string {
	return fmt.Sprintf("Sage answered for business %s instead of %s (request %s)", e.answered, e.requested, e.requestID)
}

func (e *businessChanged) Is(target error) bool { return target == errBusinessChanged }

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// businessOf is the business a back-pressure error names.
func businessOf(err error) string {
	var bp *budget.BackPressure
	if errors.As(err, &bp) {
		return bp.Business
	}
	var op *OpError
	if errors.As(err, &op) {
		return op.Business
	}
	return ""
}

// apiPrefix is the URL prefix the rate budget applies to: the API, not the
// token endpoint.
func apiPrefix(cfg Config) string {
	if len(cfg.RegionAPI) > 0 {
		return "" // several API hosts: budget every request carrying X-Business
	}
	return cfg.Endpoints.APIURL
}

// budgetMetrics exports the budget's waits and throttles.
type budgetMetrics struct{ s *Service }

func (m budgetMetrics) Waited(kind string, d time.Duration) {
	m.s.waits.WithLabelValues(kind).Observe(d.Seconds())
}

func (m budgetMetrics) Throttled(string, time.Duration) {
	m.s.throttled.WithLabelValues("business").Inc()
}
