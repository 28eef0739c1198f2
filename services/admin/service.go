package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/sage/budget"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Store is what the admin service needs from libs/store; *store.Store
// implements it.
type Store interface {
	CreateTenant(ctx context.Context, id, name string) (store.Tenant, error)
	Tenant(ctx context.Context, id string) (store.Tenant, error)
	Tenants(ctx context.Context) ([]store.Tenant, error)
	SetMagentoPaired(ctx context.Context, tenantID, shopURL, apiKey string) error
	SetMagentoStatus(ctx context.Context, tenantID, status string) error
	RevokeTokens(ctx context.Context, tenantID string, revoke func(context.Context, store.Tokens) error) error
	SetSageStatus(ctx context.Context, tenantID, status, businessID string) error
	SetCallbackTransport(ctx context.Context, tenantID, transport, grpcTarget string) error
	RecordPairingAttempt(ctx context.Context, tenantID, shopURL, outcome, message string) error
	CreateOAuthState(ctx context.Context, tenantID, state string) error
	ConsumeOAuthState(ctx context.Context, state string, maxAge time.Duration) (string, error)
	SaveTokens(ctx context.Context, tenantID string, t store.Tokens) error
	SetRefCache(ctx context.Context, tenantID, kind string, doc []byte) error
	Policy(ctx context.Context, tenantID string) ([]byte, error)
	SetPolicy(ctx context.Context, tenantID string, doc []byte) error
	ListRuns(ctx context.Context, f store.RunFilter) ([]store.Run, error)
	RunCounts(ctx context.Context, tenantID string) (store.Counts, error)
	Ping(ctx context.Context) error

	// Runs: show and retry.
	Run(ctx context.Context, id string) (store.Run, error)
	Attempts(ctx context.Context, runID string) ([]store.Attempt, error)
	RunMapping(ctx context.Context, runID string) (store.Mapping, error)
	ResetRun(ctx context.Context, id string) (store.Run, error)
	IdleRuns(ctx context.Context, tenantID string, before time.Time, limit int) ([]store.Run, error)

	// Sync-state backfill.
	BeginBackfill(ctx context.Context, k store.BackfillKey) (store.BackfillCursor, error)
	PeekBackfill(ctx context.Context, k store.BackfillKey) (store.BackfillCursor, bool, error)
	SaveBackfill(ctx context.Context, k store.BackfillKey, c store.BackfillCursor, completed bool) error
	CountBackfill(ctx context.Context, k store.BackfillKey, c store.BackfillCursor) (total, remaining int64, err error)
	BackfillPage(ctx context.Context, k store.BackfillKey, c store.BackfillCursor, limit int) ([]store.Run, error)
	SyncStatesDelivered(ctx context.Context, runIDs []string, since time.Time) (int, error)
	Now(ctx context.Context) (time.Time, error)

	// Cross-references, reference data and tokens.
	Xref(ctx context.Context, tenantID, kind, magentoKey, currency string) (store.Xref, error)
	PutXref(ctx context.Context, x store.Xref) error
	RefCache(ctx context.Context, tenantID, kind string) ([]byte, time.Time, error)
	Tokens(ctx context.Context, tenantID string) (store.Tokens, error)
	RefreshTokens(ctx context.Context, tenantID string, need func(store.Tokens) bool,
		refresh func(context.Context, store.Tokens) (store.Tokens, error)) (store.Tokens, error)

	// Metrics (metrics.go).
	TenantActivity(ctx context.Context) ([]store.TenantActivity, error)
	// Shop health (shophealth.go).
	ShopActivity(ctx context.Context, tenantID string) (store.ShopActivity, error)

	// Scheduled jobs and reconciliation (jobs.go, reconcile.go).
	JobStore
	ReconcileStore
	// The console's login sessions (console.go).
	SessionStore
}

var _ Store = (*store.Store)(nil)

// OAuthStateTTL is how long a Sage connection link stays valid.
const OAuthStateTTL = 10 * time.Minute

// Service is the admin service: the AdminService gRPC implementation and the
// HTTP handler (Sage OAuth, dashboard, health, metrics).
type Service struct {
	ledgerv1.UnimplementedAdminServiceServer

	cfg     Config
	st      Store
	log     *slog.Logger
	hc      *http.Client
	oauth   sage.OAuth
	health  *health.Server
	reg     *prometheus.Registry
	metrics metrics
	// js publishes retries, backfills and replays; nil when the service runs
	// without NATS (those RPCs then answer FailedPrecondition).
	js jetstream.JetStream
	// backfillStall bounds how long a backfill waits for the shop to confirm
	// published sync states before it stops (resumable).
	backfillStall time.Duration
	// sageHTTP carries the service's own Sage API calls within the rate
	// budget (sagecalls.go).
	sageHTTP *http.Client
	budget   *budget.Budget
	// reconcileFindings counts findings as they open, by code.
	reconcileFindings *prometheus.CounterVec
	// logins limits failed console logins (console_password.go).
	logins loginLimiter
}

// Option configures optional dependencies of New.
type Option func(*Service)

// WithJetStream lets the service publish to Ledger's streams: row retries
// (OUTBOX), sync-state backfills (RESULTS) and dead-letter replays (DLQ).
// Without it those RPCs answer FailedPrecondition.
func WithJetStream(js jetstream.JetStream) Option { return func(s *Service) { s.js = js } }

// WithBackfillStallTimeout sets how long a backfill waits without any
// confirmation from the shop before it stops (default DefaultBackfillStall).
func WithBackfillStallTimeout(d time.Duration) Option {
	return func(s *Service) {
		if d > 0 {
			s.backfillStall = d
		}
	}
}

type metrics struct {
	rpcs     *prometheus.CounterVec
	pairings *prometheus.CounterVec
	sage     *prometheus.CounterVec
	retried  *prometheus.CounterVec
	backfill *prometheus.CounterVec
	replayed *prometheus.CounterVec
	purged   *prometheus.CounterVec
	// The Sage client's families (as the writer's): every call admin makes
	// to Sage, and its token refreshes.
	sageCalls *prometheus.CounterVec
	refreshes *prometheus.CounterVec
}

// New validates cfg and builds the service over st. log may be nil.
func New(cfg Config, st Store, log *slog.Logger, opts ...Option) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil {
		return nil, errors.New("admin: a store is required")
	}
	if log == nil {
		log = telemetry.Discard()
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 20 * time.Second}
	}
	hc = telemetry.HTTPClient(hc) // calls to shops and Sage are client spans
	s := &Service{
		cfg: cfg, st: st, log: log, hc: hc,
		oauth: sage.OAuth{
			Endpoints: cfg.Sage, ClientID: cfg.SageClientID, ClientSecret: cfg.SageClientSecret.Reveal(),
			RedirectURL: cfg.PublicURL + CallbackPath, HTTP: hc,
		},
		health:        health.NewServer(),
		reg:           telemetry.NewRegistry(),
		backfillStall: DefaultBackfillStall,
	}
	for _, o := range opts {
		o(s)
	}
	s.metrics = metrics{
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_admin_rpcs_total", Help: "AdminService calls by method and gRPC code.",
		}, []string{"method", "code"}),
		pairings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_admin_pairing_attempts_total", Help: "Magento pairing attempts by outcome.",
		}, []string{"outcome"}),
		sage: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_admin_sage_connects_total", Help: "Sage OAuth callbacks by outcome.",
		}, []string{"outcome"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_admin_runs_retried_total", Help: "Row retries by outcome (ok, refused, failed).",
		}, []string{"outcome"}),
		backfill: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_admin_backfill_rows_total", Help: "Sync-state backfill rows by outcome (pushed, duplicate, failed).",
		}, []string{"outcome"}),
		replayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_admin_dead_letters_replayed_total", Help: "Dead letters replayed by outcome (ok, failed).",
		}, []string{"outcome"}),
		purged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ledger_admin_dead_letters_purged_total", Help: "Dead letters deleted by a purge, by outcome (ok, failed).",
		}, []string{"outcome"}),
	}
	s.metrics.sageCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_sage_calls_total",
		Help: "HTTP calls to Sage (API and token endpoint) by resource (contacts, sales_invoices, token, …), method and status (0 = no answer).",
	}, []string{"resource", "method", "status"})
	s.metrics.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_sage_oauth_refreshes_total",
		Help: "Sage token refreshes by outcome: ok, refused (4xx, e.g. invalid_grant: the binding becomes token_revoked), failed (5xx or no answer).",
	}, []string{"outcome"})
	s.reg.MustRegister(s.metrics.rpcs, s.metrics.pairings, s.metrics.sage, s.metrics.retried, s.metrics.backfill, s.metrics.replayed, s.metrics.purged,
		s.metrics.sageCalls, s.metrics.refreshes, newActivityCollector(st, cfg.MetricsTenants))
	// Count the calls to Sage's hosts (the same client calls shops).
	s.hc.Transport = &sageCalls{base: s.hc.Transport, hosts: sageHosts(cfg.Sage), calls: s.metrics.sageCalls}
	// The service's own Sage calls (refresh, reconciliation) within the rate
	// budget, on top of the transport above.
	var err error
	if s.sageHTTP, s.budget, err = newSageHTTP(s.hc, cfg); err != nil {
		return nil, err
	}
	s.registerReconcileMetrics()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(ledgerv1.AdminService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s, nil
}

// Config returns the effective configuration (defaults applied).
func (s *Service) Config() Config { return s.cfg }

// GRPCServer returns a gRPC server with AdminService, the health service and
// reflection registered, behind the operator-token interceptors, each call a
// server span. opts are appended (e.g. credentials).
func (s *Service) GRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	opts = append([]grpc.ServerOption{
		// Every call is a server span (the operator's trace: retries and
		// replays link from it to the runs' own traces).
		telemetry.GRPCServerOption(),
		grpc.ChainUnaryInterceptor(s.unaryAuth),
		grpc.ChainStreamInterceptor(s.streamAuth),
	}, opts...)
	g := grpc.NewServer(opts...)
	ledgerv1.RegisterAdminServiceServer(g, s)
	healthpb.RegisterHealthServer(g, s.health)
	reflection.Register(g)
	return g
}

// Shutdown marks the health service NOT_SERVING (call before GracefulStop).
func (s *Service) Shutdown() { s.health.Shutdown() }
