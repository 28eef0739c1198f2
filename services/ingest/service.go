package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ledgersync/ledger/libs/store"
)

// Store is what ingest needs from the shared state; *store.Store satisfies it.
type Store interface {
	Tenant(ctx context.Context, id string) (store.Tenant, error)
	AcceptWebhook(ctx context.Context, d store.Delivery, window time.Duration) (store.Acceptance, error)
	SetMagentoStatus(ctx context.Context, tenantID, status string) error
	RunCounts(ctx context.Context, tenantID string) (store.Counts, error)
	LatestRun(ctx context.Context, tenantID, entityType string, magentoID int64) (store.Run, error)
	ForgetWebhookKeys(ctx context.Context, age time.Duration) (int64, error)
	// Shop health (activity.go, drift.go, the tile).
	TouchShops(ctx context.Context, seen map[string]time.Time) error
	RecordUnauthorized(ctx context.Context, r store.Refusal) (int, error)
	ShopActivity(ctx context.Context, tenantID string) (store.ShopActivity, error)
	Ping(ctx context.Context) error
}

var _ Store = (*store.Store)(nil)

// Service is the Magento-facing HTTP surface. It is safe for concurrent use.
type Service struct {
	cfg     Config
	st      Store
	js      jetstream.JetStream
	log     *slog.Logger
	replay  *replayGuard
	tenants *tenantLimiter
	metrics *metrics
	now     func() time.Time
	// relayRunning is true while the INGEST consumer runs (RunRelayed).
	relayRunning atomic.Bool
	// activity holds each tenant's last accepted delivery until the next
	// flush; drift paces the pings that confirm auth drift; shopHTTP sends
	// them.
	activity *shopActivity
	drift    *driftGuard
	shopHTTP *http.Client
}

// New returns the service. cfg's zero fields take their defaults; st is
// usually a *store.Store and js a JetStream context on a connection made with
// reconnect enabled (the OUTBOX stream must exist: bus.EnsureStreams).
func New(cfg Config, st Store, js jetstream.JetStream, log *slog.Logger) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil || js == nil {
		return nil, errors.New("ingest: New needs a store and a JetStream context")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	replay, err := openReplayGuard(ctx, js, cfg.NATSReplicas, cfg.ReplayCacheSize)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, st: st, js: js, log: log, replay: replay,
		tenants: newTenantLimiter(cfg.TenantMaxInFlight), now: time.Now,
		activity: newShopActivity(), drift: newDriftGuard(), shopHTTP: cfg.ShopHTTP}
	if s.shopHTTP == nil {
		s.shopHTTP = defaultShopHTTP()
	}
	s.metrics = newMetrics(s.replay.entries, js)
	return s, nil
}

// Config returns the configuration in effect (defaults applied).
func (s *Service) Config() Config { return s.cfg }

// Handler returns the HTTP handler serving every endpoint. It routes on the
// raw path and never redirects: Magento does not follow redirects and would
// retry a 3xx until the row dead-letters, so a path that is not exactly one of
// the endpoints (a trailing slash, a double slash, dot segments) is a JSON 404.
func (s *Service) Handler() http.Handler {
	return http.HandlerFunc(s.route)
}

// Routes. The webhook's two path segments are decoded (rawurlencode on the
// Magento side) before use.
func (s *Service) route(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	switch path {
	case "/v1/tile/health":
		s.serve(w, r, "tile_health", http.MethodGet, s.tileHealth)
		return
	case "/v1/tenant/disconnect":
		s.serve(w, r, "disconnect", http.MethodPost, s.disconnect)
		return
	case "/v1/status":
		s.serve(w, r, "status", http.MethodGet, s.status)
		return
	case "/metrics":
		s.serve(w, r, "metrics", http.MethodGet, s.metrics.handler.ServeHTTP)
		return
	}
	if rest, ok := strings.CutPrefix(path, "/webhooks/magento/"); ok {
		seg := strings.Split(rest, "/")
		if len(seg) == 2 && seg[0] != "" && seg[1] != "" {
			tenant, err1 := url.PathUnescape(seg[0])
			event, err2 := url.PathUnescape(seg[1])
			if err1 == nil && err2 == nil {
				s.serve(w, r, "webhook", http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
					s.webhook(w, r, tenant, event)
				})
				return
			}
		}
	}
	s.serve(w, r, "not_found", "", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no endpoint at this path; webhooks go to POST /webhooks/magento/{tenant}/{event} (no trailing slash)")
	})
}

// routeTemplates name the server span of each route (the raw path has the
// tenant in it).
var routeTemplates = map[string]string{
	"tile_health": "/v1/tile/health", "disconnect": "/v1/tenant/disconnect", "status": "/v1/status",
	"metrics": "/metrics", "webhook": "/webhooks/magento/{tenant}/{event}", "not_found": "(unmatched)",
}

// serve limits the body, checks the method, counts the response and calls h.
func (s *Service) serve(w http.ResponseWriter, r *http.Request, route, method string, h http.HandlerFunc) {
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetName(r.Method + " " + routeTemplates[route])
		span.SetAttributes(attribute.String("http.route", routeTemplates[route]))
	}
	if r.Body != nil {
		// Given the server's own writer, so a body over the limit also closes
		// the connection after the answer.
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() { s.metrics.requests.WithLabelValues(route, statusLabel(sw.status())).Inc() }()
	if method != "" && r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
		sw.Header().Set("Allow", method)
		writeError(sw, http.StatusMethodNotAllowed, "method_not_allowed", "use "+method+" for this endpoint")
		return
	}
	h(sw, r)
}

// statusWriter remembers the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// errorBody is every non-2xx answer. Magento shows the first 8 KiB of a 4xx body
// to operators (byte8:sage:outbox:inspect), so Message says what to do.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, errCode, message string) {
	writeJSON(w, code, errorBody{Error: errCode, Message: message})
}

// writeFailure answers an error from authenticate or a store/bus call: 401 for
// a refused credential, 503 for anything else. It logs the real reason.
func (s *Service) writeFailure(w http.ResponseWriter, r *http.Request, tenant string, err error) {
	var ae *authError
	if errors.As(err, &ae) {
		if tenant == "" {
			tenant = ae.Tenant
		}
		s.log.WarnContext(r.Context(), "ingest: request unauthorized", "tenant", tenant, "reason", ae.Reason, "path", r.URL.EscapedPath())
		writeError(w, http.StatusUnauthorized, "unauthorized", ae.Reason)
		return
	}
	s.unavailable(w, r, tenant, err)
}

// unavailable answers 503: Magento keeps the row pending and retries (60 s,
// 5 m, 30 m, … for about 4 days). A 4xx would dead-letter it.
func (s *Service) unavailable(w http.ResponseWriter, r *http.Request, tenant string, err error) {
	what := "temporarily unavailable"
	var ue *unavailableError
	if errors.As(err, &ue) {
		what = ue.What
	}
	s.log.ErrorContext(r.Context(), "ingest: request failed transiently", "tenant", tenant, "path", r.URL.EscapedPath(), "err", err)
	w.Header().Set("Retry-After", "60")
	writeError(w, http.StatusServiceUnavailable, "unavailable", what+"; Magento will retry")
}
