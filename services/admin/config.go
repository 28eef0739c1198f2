package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/env"
	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/shophealth"
)

// Defaults.
const (
	DefaultGRPCAddr  = "127.0.0.1:9090"
	DefaultHTTPAddr  = "127.0.0.1:8086"
	DefaultPublicURL = "http://127.0.0.1:8086"
	// DefaultRefDataEvery and DefaultReconcileEvery are how often each
	// tenant's reference data is refreshed and its books reconciled.
	DefaultRefDataEvery   = 24 * time.Hour
	DefaultReconcileEvery = 24 * time.Hour
	// DefaultSageRatePerMinute paces the service's own calls to one Sage
	// business (refresh, reconciliation), on top of the writer's.
	DefaultSageRatePerMinute = 20
	// DefaultJobScan is how often due scheduled jobs are looked for.
	DefaultJobScan = time.Minute
)

// CallbackPath is where Sage sends the user back after authorising; the redirect
// URL registered with Sage is Config.PublicURL + CallbackPath.
const CallbackPath = "/oauth/sage/callback"

// Config configures the admin service. ConfigFromEnv reads it from the
// environment; WithDefaults fills the zero fields.
type Config struct {
	// GRPCAddr is where AdminService listens (ADMIN_GRPC_ADDR, default
	// 127.0.0.1:9090).
	GRPCAddr string
	// HTTPAddr is where the OAuth callback, dashboard, /healthz, /readyz and
	// /metrics listen (ADMIN_HTTP_ADDR, default 127.0.0.1:8086).
	HTTPAddr string
	// PublicURL is the origin operators' browsers and Sage reach HTTPAddr at
	// (ADMIN_PUBLIC_URL, default http://127.0.0.1:8086). The Sage redirect URL is
	// PublicURL + CallbackPath and must be registered with the Sage app.
	PublicURL string
	// AdminToken is the operator credential: gRPC calls carry it as
	// "authorization: Bearer <token>" metadata, the dashboard as an
	// Authorization header (ADMIN_TOKEN). Required unless InsecureDev.
	AdminToken secrets.String
	// OperatorPasswordHash, when set, is a bcrypt hash of a password that
	// also logs in to the console (ADMIN_OPERATOR_PASSWORD_HASH), so people
	// need not handle ADMIN_TOKEN; scripts and ledgerctl still use the token.
	OperatorPasswordHash secrets.String
	// InsecureDev disables operator authentication. Only allowed with
	// LEDGER_ENV=dev and no ADMIN_TOKEN (ADMIN_INSECURE_DEV=true); never use it
	// on a reachable address.
	InsecureDev bool
	// Env is LEDGER_ENV: dev or prod (default prod). In dev the browser-only
	// routes also accept the token as a "token" query parameter.
	Env string
	// LedgerBaseURL is the public origin of the ingest service, sent to the shop
	// at pairing: every webhook of the shop goes there (LEDGER_BASE_URL,
	// required).
	LedgerBaseURL string
	// Sage is the Sage host set (SAGE_AUTH_URL, SAGE_TOKEN_URL, SAGE_REVOKE_URL,
	// SAGE_API_URL; default sage.Official()).
	Sage sage.Endpoints
	// SageClientID and SageClientSecret are the Sage app registration
	// (SAGE_CLIENT_ID, SAGE_CLIENT_SECRET). Without them StartSageConnect
	// answers FailedPrecondition; Magento pairing still works.
	SageClientID     string
	SageClientSecret secrets.String
	// HTTPClient calls shops and Sage; nil means a client with a 20 s timeout.
	HTTPClient *http.Client
	// MetricsTenants caps the tenants a per-tenant metric names
	// (LEDGER_METRICS_TENANTS, a common setting the runtime copies here; 0:
	// the default, 20).
	MetricsTenants int
	// TracingUIURL, when set, links each run on the dashboard to its trace:
	// a URL with {trace_id} in it, e.g. http://jaeger:16686/trace/{trace_id}
	// (LEDGER_TRACING_UI_URL).
	TracingUIURL string
	// HTTPListener and GRPCListener, when set, are served instead of listening
	// on HTTPAddr and GRPCAddr (cmd/ledger-dev must know the ports before the
	// service is built).
	HTTPListener, GRPCListener net.Listener
	// RefDataEvery is how often each tenant's Sage reference data is
	// refreshed (ADMIN_REFDATA_EVERY, default 24h, ±10 % jitter; negative: off).
	RefDataEvery time.Duration
	// ReconcileEvery is how often each tenant is reconciled
	// (ADMIN_RECONCILE_EVERY, default 24h, ±10 % jitter; negative: off).
	ReconcileEvery time.Duration
	// SageRatePerMinute paces this service's calls to one Sage business
	// (ADMIN_SAGE_RATE_PER_MINUTE, default 20); its calls also count against
	// the app-wide limits the writers share (libs/sage/budget).
	SageRatePerMinute int
	// JobScan is how often due scheduled jobs are looked for (default 1m;
	// tests shorten it).
	JobScan time.Duration
	// NATSReplicas is how many copies the shared rate-budget buckets keep
	// (LEDGER_NATS_REPLICAS, set by Program from the common settings).
	NATSReplicas int
	// ShopSilentAfter is how long a shop that used to send may send nothing
	// before its health verdict is silent (LEDGER_SHOP_SILENT_AFTER, default
	// 6h; ingest's tile reads the same variable; shophealth.go).
	ShopSilentAfter time.Duration
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.GRPCAddr == "" {
		c.GRPCAddr = DefaultGRPCAddr
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.PublicURL == "" {
		c.PublicURL = DefaultPublicURL
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	c.LedgerBaseURL = strings.TrimRight(c.LedgerBaseURL, "/")
	if c.Env == "" {
		c.Env = "prod"
	}
	c.Sage = c.Sage.OrOfficial()
	c.Sage.APIURL = strings.TrimRight(c.Sage.APIURL, "/")
	if c.RefDataEvery == 0 {
		c.RefDataEvery = DefaultRefDataEvery
	}
	if c.ReconcileEvery == 0 {
		c.ReconcileEvery = DefaultReconcileEvery
	}
	if c.SageRatePerMinute == 0 {
		c.SageRatePerMinute = DefaultSageRatePerMinute
	}
	if c.JobScan <= 0 {
		c.JobScan = DefaultJobScan
	}
	if c.ShopSilentAfter == 0 {
		c.ShopSilentAfter = shophealth.DefaultSilentAfter
	}
	return c
}

// ConfigFromEnv reads the ADMIN_*, SAGE_* and LEDGER_* variables, reporting
// every bad one at once.
func ConfigFromEnv() (Config, error) {
	var r env.Reader
	c := Config{
		GRPCAddr:             r.String("ADMIN_GRPC_ADDR", DefaultGRPCAddr),
		HTTPAddr:             r.String("ADMIN_HTTP_ADDR", DefaultHTTPAddr),
		PublicURL:            r.String("ADMIN_PUBLIC_URL", DefaultPublicURL),
		AdminToken:           secrets.String(r.String("ADMIN_TOKEN", "")),
		OperatorPasswordHash: secrets.String(r.String("ADMIN_OPERATOR_PASSWORD_HASH", "")),
		InsecureDev:          r.Bool("ADMIN_INSECURE_DEV", false),
		Env:                  r.String("LEDGER_ENV", "prod"),
		LedgerBaseURL:        r.String("LEDGER_BASE_URL", ""),
		Sage: sage.Endpoints{
			AuthURL:   r.String("SAGE_AUTH_URL", ""),
			TokenURL:  r.String("SAGE_TOKEN_URL", ""),
			RevokeURL: r.String("SAGE_REVOKE_URL", ""),
			APIURL:    r.String("SAGE_API_URL", ""),
		},
		SageClientID:      r.String("SAGE_CLIENT_ID", ""),
		SageClientSecret:  secrets.String(r.String("SAGE_CLIENT_SECRET", "")),
		TracingUIURL:      r.String("LEDGER_TRACING_UI_URL", ""),
		RefDataEvery:      r.Duration("ADMIN_REFDATA_EVERY", DefaultRefDataEvery),
		ReconcileEvery:    r.Duration("ADMIN_RECONCILE_EVERY", DefaultReconcileEvery),
		SageRatePerMinute: r.Int("ADMIN_SAGE_RATE_PER_MINUTE", DefaultSageRatePerMinute),
		ShopSilentAfter:   r.Duration("LEDGER_SHOP_SILENT_AFTER", shophealth.DefaultSilentAfter),
	}
	if err := r.Err(); err != nil {
		return Config{}, err
	}
	c = c.WithDefaults()
	return c, c.Validate()
}

// Validate checks a config after defaults are applied; each problem names the
// variable and the fix.
func (c Config) Validate() error {
	var errs []error
	for _, a := range [][2]string{{"ADMIN_GRPC_ADDR", c.GRPCAddr}, {"ADMIN_HTTP_ADDR", c.HTTPAddr}} {
		if _, _, err := net.SplitHostPort(a[1]); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: use host:port, e.g. 127.0.0.1:9090", a[0], a[1]))
		}
	}
	if c.Env != "dev" && c.Env != "prod" {
		errs = append(errs, fmt.Errorf("LEDGER_ENV=%q: use dev or prod", c.Env))
	}
	switch {
	case c.AdminToken.Reveal() != "" && c.InsecureDev:
		errs = append(errs, errors.New("ADMIN_INSECURE_DEV=true with ADMIN_TOKEN set: choose one; unset ADMIN_INSECURE_DEV to require the token"))
	case c.InsecureDev && c.Env != "dev":
		errs = append(errs, errors.New("ADMIN_INSECURE_DEV=true is only allowed with LEDGER_ENV=dev; set ADMIN_TOKEN instead"))
	case c.AdminToken.Reveal() == "" && !c.InsecureDev:
		if c.Env == "dev" {
			errs = append(errs, errors.New("ADMIN_TOKEN is not set: set it to a long random string (e.g. openssl rand -hex 32), or set ADMIN_INSECURE_DEV=true to run the dev stack without operator authentication"))
		} else {
			errs = append(errs, errors.New("ADMIN_TOKEN is not set: set it to a long random string, e.g. openssl rand -hex 32"))
		}
	case c.AdminToken.Reveal() != "" && len(c.AdminToken.Reveal()) < 16:
		errs = append(errs, errors.New("ADMIN_TOKEN is too short: use at least 16 characters, e.g. openssl rand -hex 32"))
	}
	if err := checkPasswordHash(c.OperatorPasswordHash.Reveal()); err != nil {
		errs = append(errs, fmt.Errorf("ADMIN_OPERATOR_PASSWORD_HASH: %w", err))
	}
	if err := absoluteHTTPURL(c.PublicURL); err != nil {
		errs = append(errs, fmt.Errorf("ADMIN_PUBLIC_URL=%q: %w, e.g. %s", c.PublicURL, err, DefaultPublicURL))
	}
	if c.LedgerBaseURL == "" {
		errs = append(errs, errors.New("LEDGER_BASE_URL is not set: set it to the public https origin of the ingest service (the shop sends every webhook there), e.g. https://ledger.example.com"))
	} else if err := absoluteHTTPURL(c.LedgerBaseURL); err != nil {
		errs = append(errs, fmt.Errorf("LEDGER_BASE_URL=%q: %w, e.g. https://ledger.example.com", c.LedgerBaseURL, err))
	}
	for _, u := range [][2]string{{"SAGE_AUTH_URL", c.Sage.AuthURL}, {"SAGE_TOKEN_URL", c.Sage.TokenURL},
		{"SAGE_REVOKE_URL", c.Sage.RevokeURL}, {"SAGE_API_URL", c.Sage.APIURL}} {
		if err := absoluteHTTPURL(u[1]); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", u[0], u[1], err))
		}
	}
	if c.TracingUIURL != "" {
		if err := absoluteHTTPURL(c.TracingUIURL); err != nil || !strings.Contains(c.TracingUIURL, "{trace_id}") {
			errs = append(errs, fmt.Errorf("LEDGER_TRACING_UI_URL=%q: use an absolute http(s) URL with {trace_id} where the trace id goes, e.g. http://jaeger:16686/trace/{trace_id}", c.TracingUIURL))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ADMIN_REFDATA_EVERY", c.RefDataEvery}, {"ADMIN_RECONCILE_EVERY", c.ReconcileEvery}} {
		if d.v > 0 && d.v < time.Minute {
			errs = append(errs, fmt.Errorf("%s=%s: use at least 1m (default 24h), or a negative duration to turn it off", d.name, d.v))
		}
	}
	if c.SageRatePerMinute < 1 {
		errs = append(errs, fmt.Errorf("ADMIN_SAGE_RATE_PER_MINUTE=%d: use at least 1 (default %d)", c.SageRatePerMinute, DefaultSageRatePerMinute))
	}
	if c.ShopSilentAfter < time.Second {
		errs = append(errs, fmt.Errorf("LEDGER_SHOP_SILENT_AFTER=%s: use at least 1s (default %s)", c.ShopSilentAfter, shophealth.DefaultSilentAfter))
	}
	if (c.SageClientID == "") != (c.SageClientSecret.Reveal() == "") {
		errs = append(errs, errors.New("SAGE_CLIENT_ID and SAGE_CLIENT_SECRET: set both (the Sage app registration) or neither"))
	}
	return errors.Join(errs...)
}

// LogValue prints the configuration at start, secrets masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("grpc_addr", c.GRPCAddr), slog.String("http_addr", c.HTTPAddr),
		slog.String("public_url", c.PublicURL), slog.String("env", c.Env), slog.Bool("insecure_dev", c.InsecureDev),
		slog.String("ledger_base_url", c.LedgerBaseURL), slog.String("sage_api_url", c.Sage.APIURL),
		slog.String("sage_client_id", c.SageClientID), slog.String("admin_token", mask(c.AdminToken)),
		slog.String("operator_password_hash", mask(c.OperatorPasswordHash)),
		slog.String("sage_client_secret", mask(c.SageClientSecret)), slog.String("tracing_ui_url", c.TracingUIURL),
		slog.Duration("refdata_every", c.RefDataEvery), slog.Duration("reconcile_every", c.ReconcileEvery),
		slog.Int("sage_rate_per_minute", c.SageRatePerMinute))
}

func mask(s secrets.String) string {
	if s.Reveal() == "" {
		return "(unset)"
	}
	return "[redacted]"
}

// absoluteHTTPURL accepts an absolute http(s) URL with a host.
func absoluteHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an absolute http(s) URL")
	}
	return nil
}
