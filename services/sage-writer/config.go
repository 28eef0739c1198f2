package sagewriter

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/ledgersync/ledger/libs/env"
	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/sage/budget"
	"github.com/ledgersync/ledger/libs/sage/lifecycle"
	"github.com/ledgersync/ledger/libs/secrets"
)

// Defaults of Config, applied by ConfigFromEnv and by New for zero fields.
const (
	DefaultWorkers     = 16
	DefaultMaxDeliver  = 10
	DefaultPauseDelay  = time.Minute
	DefaultRetryBase   = time.Second
	DefaultRetryCap    = 5 * time.Minute
	DefaultHTTPTimeout = 30 * time.Second
	DefaultAckWait     = 5 * time.Second
	DefaultWorkTimeout = 2 * time.Minute
	DefaultDrain       = 15 * time.Second
	DefaultTenantScan  = 10 * time.Second
	DefaultAddr        = "127.0.0.1:8084"
)

// The writer keeps every write it holds alive with InProgress every AckWait/3,
// so a slow Sage call never outlives its lease (a message redelivered while its
// first handler still ran would be written twice in parallel); AckWait only
// bounds how long a write held by a crashed writer waits.
const minAckWait = time.Second

// Config is the sage-writer's configuration. Zero fields take the defaults
// documented on each field.
type Config struct {
	// Endpoints are Sage's hosts (SAGE_API_URL, SAGE_AUTH_URL, SAGE_TOKEN_URL,
	// SAGE_REVOKE_URL); empty fields default to sage.Official().
	Endpoints sage.Endpoints
	// ClientID and ClientSecret are the app registration (SAGE_CLIENT_ID,
	// SAGE_CLIENT_SECRET); both required. The secret prints as [redacted].
	ClientID     string
	ClientSecret secrets.String
	// RedirectURL is the registered OAuth callback (SAGE_REDIRECT_URL). The
	// writer only refreshes tokens, so it is optional here.
	RedirectURL string
	// RegionAPI overrides the API base URL per binding region
	// (SAGE_REGION_API_URLS, "gb=https://…,us=https://…"; default none: Sage
	// serves every region from one base URL).
	RegionAPI sage.RegionalAPI
	// Workers is how many SageWrites this process handles at once
	// (WRITER_WORKERS, default 16). Writes of one tenant are serialised
	// regardless, and workers are handed to tenants round-robin.
	Workers int
	// MaxDeliver is the number of deliveries before a retried write is
	// dead-lettered (WRITER_MAX_DELIVER, default 10).
	MaxDeliver int
	// PauseDelay is how long a write is held before it is tried again while
	// its binding cannot write: tokens revoked, binding not active, lead
	// business changed (WRITER_PAUSE_DELAY, default 1m). It bounds how long
	// writes take to resume after a re-authorisation. Held writes are never
	// dead-lettered.
	PauseDelay time.Duration
	// RetryBase and RetryCap shape the back-off of transient failures: delivery
	// n waits RetryBase·2^(n−1), capped at RetryCap, ±20 % jitter
	// (WRITER_RETRY_BASE, default 1s; WRITER_RETRY_CAP, default 5m).
	RetryBase time.Duration
	RetryCap  time.Duration
	// Budget is Sage's rate budget: SAGE_APP_REQUESTS_PER_DAY (1296000),
	// SAGE_APP_CONCURRENCY (150), both shared by the writers running now
	// (budget.Fleet), SAGE_BUSINESS_RATE_PER_MINUTE (100), SAGE_BUSINESS_BURST
	// (2).
	Budget budget.Config
	// TenantScan is how often the set of tenants (and so of per-tenant
	// consumers) is re-read (WRITER_TENANT_SCAN, default 10s).
	TenantScan time.Duration
	// KeepAliveEvery, KeepAliveExpiresWithin and KeepAliveRotatedBefore drive
	// the keep-alive refresh of idle bindings (WRITER_KEEPALIVE_EVERY 1h,
	// WRITER_KEEPALIVE_EXPIRES_WITHIN 168h, WRITER_KEEPALIVE_ROTATED_BEFORE
	// 600h). KeepAliveEvery < 0 switches it off.
	KeepAliveEvery         time.Duration
	KeepAliveExpiresWithin time.Duration
	KeepAliveRotatedBefore time.Duration
	// HTTPTimeout bounds each Sage HTTP call (WRITER_HTTP_TIMEOUT, default 30s).
	HTTPTimeout time.Duration
	// AckWait is how soon a write held by a writer that died is delivered
	// again (WRITER_ACK_WAIT, default 5s, at least 1s). Writes in progress are
	// kept alive, so this is not a limit on how long a write may take.
	AckWait time.Duration
	// WorkTimeout bounds one delivery of a write: budget waits, the Sage calls
	// and the bookkeeping (WRITER_WORK_TIMEOUT, default 2m, at least twice
	// WRITER_HTTP_TIMEOUT).
	WorkTimeout time.Duration
	// Drain is how long writes in progress may finish on shutdown before they
	// are cancelled and handed back to the stream (WRITER_DRAIN, default 15s).
	Drain time.Duration
	// NATSReplicas is how many copies the fleet's buckets keep: the
	// deployment's LEDGER_NATS_REPLICAS (the runtime sets it; default 1).
	NATSReplicas int
	// MetricsTenants caps the tenants ledger_consumer_tenant_backlog_messages
	// names (LEDGER_METRICS_TENANTS, a common setting; 0: the default).
	MetricsTenants int
	// Addr serves /healthz, /readyz and /metrics (WRITER_ADDR, default
	// 127.0.0.1:8084).
	Addr string
	// HTTPClient, when set, is used for every Sage call (tests); otherwise a
	// client with HTTPTimeout is built.
	HTTPClient *http.Client
}

// ConfigFromEnv reads the configuration from the environment. Every problem is
// reported at once, each naming its variable.
func ConfigFromEnv() (Config, error) {
	r := &env.Reader{}
	off := sage.Official()
	regional, rerr := sage.ParseRegionalAPI(r.String("SAGE_REGION_API_URLS", ""))
	if rerr != nil {
		r.Fail("SAGE_REGION_API_URLS: %v", rerr)
	}
	c := Config{
		RegionAPI: regional,
		Endpoints: sage.Endpoints{
			APIURL:    r.String("SAGE_API_URL", off.APIURL),
			AuthURL:   r.String("SAGE_AUTH_URL", off.AuthURL),
			TokenURL:  r.String("SAGE_TOKEN_URL", off.TokenURL),
			RevokeURL: r.String("SAGE_REVOKE_URL", off.RevokeURL),
		},
		ClientID:     r.String("SAGE_CLIENT_ID", ""),
		ClientSecret: secrets.String(r.String("SAGE_CLIENT_SECRET", "")),
		RedirectURL:  r.String("SAGE_REDIRECT_URL", ""),
		Workers:      r.Int("WRITER_WORKERS", DefaultWorkers),
		MaxDeliver:   r.Int("WRITER_MAX_DELIVER", DefaultMaxDeliver),
		PauseDelay:   r.Duration("WRITER_PAUSE_DELAY", DefaultPauseDelay),
		RetryBase:    r.Duration("WRITER_RETRY_BASE", DefaultRetryBase),
		RetryCap:     r.Duration("WRITER_RETRY_CAP", DefaultRetryCap),
		Budget: budget.Config{
			AppRequestsPerDay: r.Int("SAGE_APP_REQUESTS_PER_DAY", budget.DefaultAppRequestsPerDay),
			AppConcurrency:    r.Int("SAGE_APP_CONCURRENCY", budget.DefaultAppConcurrency),
			BusinessPerMinute: float64(r.Int("SAGE_BUSINESS_RATE_PER_MINUTE", budget.DefaultBusinessPerMinute)),
			BusinessBurst:     r.Int("SAGE_BUSINESS_BURST", budget.DefaultBusinessBurst),
		},
		TenantScan:             r.Duration("WRITER_TENANT_SCAN", DefaultTenantScan),
		KeepAliveEvery:         r.Duration("WRITER_KEEPALIVE_EVERY", lifecycle.DefaultKeepAliveEvery),
		KeepAliveExpiresWithin: r.Duration("WRITER_KEEPALIVE_EXPIRES_WITHIN", lifecycle.DefaultKeepAliveExpiry),
		KeepAliveRotatedBefore: r.Duration("WRITER_KEEPALIVE_ROTATED_BEFORE", lifecycle.DefaultKeepAliveRotated),
		HTTPTimeout:            r.Duration("WRITER_HTTP_TIMEOUT", DefaultHTTPTimeout),
		AckWait:                r.Duration("WRITER_ACK_WAIT", DefaultAckWait),
		WorkTimeout:            r.Duration("WRITER_WORK_TIMEOUT", DefaultWorkTimeout),
		Drain:                  r.Duration("WRITER_DRAIN", DefaultDrain),
		Addr:                   r.String("WRITER_ADDR", DefaultAddr),
	}
	if err := r.Err(); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	c.Endpoints = c.Endpoints.OrOfficial()
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.PauseDelay == 0 {
		c.PauseDelay = DefaultPauseDelay
	}
	if c.RetryBase == 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryCap == 0 {
		c.RetryCap = DefaultRetryCap
	}
	if c.TenantScan == 0 {
		c.TenantScan = DefaultTenantScan
	}
	if c.KeepAliveEvery == 0 {
		c.KeepAliveEvery = lifecycle.DefaultKeepAliveEvery
	}
	if c.KeepAliveExpiresWithin == 0 {
		c.KeepAliveExpiresWithin = lifecycle.DefaultKeepAliveExpiry
	}
	if c.KeepAliveRotatedBefore == 0 {
		c.KeepAliveRotatedBefore = lifecycle.DefaultKeepAliveRotated
	}
	if c.HTTPTimeout == 0 {
		c.HTTPTimeout = DefaultHTTPTimeout
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.WorkTimeout == 0 {
		c.WorkTimeout = DefaultWorkTimeout
	}
	if c.Drain == 0 {
		c.Drain = DefaultDrain
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	return c
}

// Validate reports every invalid setting, naming the variable and the fix.
// Zero values that have a default are valid.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	for _, u := range []struct{ name, val string }{
		{"SAGE_API_URL", c.Endpoints.APIURL}, {"SAGE_AUTH_URL", c.Endpoints.AuthURL},
		{"SAGE_TOKEN_URL", c.Endpoints.TokenURL}, {"SAGE_REVOKE_URL", c.Endpoints.RevokeURL},
	} {
		if p, err := url.Parse(u.val); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s=%q: want an absolute http(s) URL, e.g. %s", u.name, u.val, sageDefault(u.name)))
		}
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("SAGE_CLIENT_ID is required: the client id of the Sage app registration (developer self-service)"))
	}
	if c.ClientSecret.Reveal() == "" {
		errs = append(errs, errors.New("SAGE_CLIENT_SECRET is required: the client secret of the Sage app registration"))
	}
	if c.Workers < 1 || c.Workers > 256 {
		errs = append(errs, fmt.Errorf("WRITER_WORKERS=%d: want 1..256", c.Workers))
	}
	if c.MaxDeliver < 2 {
		errs = append(errs, fmt.Errorf("WRITER_MAX_DELIVER=%d: want at least 2 (one try and one retry)", c.MaxDeliver))
	}
	if c.PauseDelay < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("WRITER_PAUSE_DELAY=%s: want at least 100ms, e.g. 1m", c.PauseDelay))
	}
	if c.RetryBase < time.Millisecond || c.RetryCap < c.RetryBase {
		errs = append(errs, fmt.Errorf("WRITER_RETRY_BASE=%s, WRITER_RETRY_CAP=%s: want a base of at least 1ms and a cap at least the base, e.g. 1s and 5m", c.RetryBase, c.RetryCap))
	}
	if c.TenantScan < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("WRITER_TENANT_SCAN=%s: want at least 100ms, e.g. 10s", c.TenantScan))
	}
	if c.KeepAliveExpiresWithin <= 0 || c.KeepAliveRotatedBefore <= 0 {
		errs = append(errs, errors.New("WRITER_KEEPALIVE_EXPIRES_WITHIN and WRITER_KEEPALIVE_ROTATED_BEFORE: want positive durations, e.g. 168h and 600h (Sage refresh tokens die after 744h)"))
	}
	if err := c.Budget.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("SAGE_APP_REQUESTS_PER_DAY, SAGE_APP_CONCURRENCY, SAGE_BUSINESS_RATE_PER_MINUTE, SAGE_BUSINESS_BURST: %w", err))
	}
	if c.HTTPTimeout < time.Second {
		errs = append(errs, fmt.Errorf("WRITER_HTTP_TIMEOUT=%s: want at least 1s, e.g. 30s", c.HTTPTimeout))
	}
	if c.AckWait < minAckWait {
		errs = append(errs, fmt.Errorf("WRITER_ACK_WAIT=%s: want at least %s, e.g. %s", c.AckWait, minAckWait, DefaultAckWait))
	}
	if c.WorkTimeout < 2*c.HTTPTimeout {
		errs = append(errs, fmt.Errorf("WRITER_WORK_TIMEOUT=%s: want at least twice WRITER_HTTP_TIMEOUT (%s)", c.WorkTimeout, c.HTTPTimeout))
	}
	if c.Drain < time.Second {
		errs = append(errs, fmt.Errorf("WRITER_DRAIN=%s: want at least 1s, e.g. %s", c.Drain, DefaultDrain))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("WRITER_ADDR=%q: want host:port, e.g. %s", c.Addr, DefaultAddr))
	}
	return errors.Join(errs...)
}

func sageDefault(name string) string {
	off := sage.Official()
	switch name {
	case "SAGE_AUTH_URL":
		return off.AuthURL
	case "SAGE_TOKEN_URL":
		return off.TokenURL
	case "SAGE_REVOKE_URL":
		return off.RevokeURL
	}
	return off.APIURL
}

// LogValue prints the configuration at start with the client secret masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("api_url", c.Endpoints.APIURL),
		slog.String("auth_url", c.Endpoints.AuthURL),
		slog.String("token_url", c.Endpoints.TokenURL),
		slog.String("revoke_url", c.Endpoints.RevokeURL),
		slog.String("client_id", c.ClientID),
		slog.Any("client_secret", c.ClientSecret),
		slog.String("redirect_url", c.RedirectURL),
		slog.Int("workers", c.Workers),
		slog.Int("max_deliver", c.MaxDeliver),
		slog.String("pause_delay", c.PauseDelay.String()),
		slog.String("retry_base", c.RetryBase.String()),
		slog.String("retry_cap", c.RetryCap.String()),
		slog.Int("app_requests_per_day", c.Budget.AppRequestsPerDay),
		slog.Int("app_concurrency", c.Budget.AppConcurrency),
		slog.Float64("business_rate_per_minute", c.Budget.BusinessPerMinute),
		slog.Int("business_burst", c.Budget.BusinessBurst),
		slog.String("tenant_scan", c.TenantScan.String()),
		slog.String("keepalive_every", c.KeepAliveEvery.String()),
		slog.String("http_timeout", c.HTTPTimeout.String()),
		slog.String("ack_wait", c.AckWait.String()),
		slog.String("work_timeout", c.WorkTimeout.String()),
		slog.String("drain", c.Drain.String()),
		slog.String("addr", c.Addr),
	)
}
