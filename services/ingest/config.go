package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ledgersync/ledger/libs/env"
	"github.com/ledgersync/ledger/libs/shophealth"
)

// Config configures the service. The zero value of every field means its
// default; ConfigFromEnv reads the documented environment variables.
type Config struct {
	// Addr is where cmd/ingest listens (INGEST_ADDR, default 127.0.0.1:8080).
	Addr string
	// DedupWindow is how long an accepted Idempotency-Key suppresses a repeat
	// whose run is pending, running or succeeded (INGEST_DEDUP_WINDOW, default
	// 168h). Past it a repeat starts a new run: the shop reuses
	// customer.upserted:{id} and product.upserted:{id} once its outbox row is
	// purged (about 30 days after success), so memory must be bounded.
	DedupWindow time.Duration
	// KeyRetentionEvery is how often the webhook keys older than DedupWindow
	// are deleted (INGEST_KEY_RETENTION_EVERY, default 1h, ±20 % jitter): past
	// the window a key suppresses nothing, and without it webhook_keys grows
	// with every event the shop ever sent.
	KeyRetentionEvery time.Duration
	// MaxBodyBytes caps a request body (INGEST_MAX_BODY_BYTES, default 524288).
	// The shop's envelopes are a few hundred bytes; a bigger body is refused
	// with 413. An accepted body travels in one NATS message, so ingest does
	// not start with a limit within 16 KiB of the NATS server's max_payload
	// (1 MiB by default).
	MaxBodyBytes int64
	// RequestTimeout bounds the database and NATS work of one request
	// (INGEST_REQUEST_TIMEOUT, default 10s). The shop gives up after 15 s, so
	// it must stay below that; at most 14s is accepted.
	RequestTimeout time.Duration
	// ReplayCacheSize caps the JWT replay set every replica shares (the NATS
	// KV bucket LEDGER_JTI; INGEST_REPLAY_CACHE_SIZE, default 1000000 tokens,
	// 128 bytes each). A full set answers 503 rather than risk accepting a
	// replay.
	ReplayCacheSize int
	// NATSReplicas is how many copies the replay bucket keeps: the
	// deployment's LEDGER_NATS_REPLICAS (the runtime sets it; default 1).
	NATSReplicas int
	// ReadHeaderTimeout bounds reading a request's headers
	// (INGEST_READ_HEADER_TIMEOUT, default 10s): a client that trickles them
	// is disconnected.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, headers and body
	// (INGEST_READ_TIMEOUT, default 10s; at most 14s). A body that has not
	// arrived by then is answered 503, so the shop retries it.
	ReadTimeout time.Duration
	// TenantMaxInFlight caps the webhooks of one tenant handled at once
	// (INGEST_TENANT_MAX_IN_FLIGHT, default 8); more are answered 503. The
	// shop's drain sends one at a time.
	TenantMaxInFlight int
	// AuthDriftThreshold and AuthDriftWindow decide when refused webhooks are
	// auth drift (INGEST_AUTH_DRIFT_THRESHOLD, default 5;
	// INGEST_AUTH_DRIFT_WINDOW, default 10m): once that many deliveries of a
	// paired tenant failed their signature within the window (with nothing
	// accepted since), ingest pings the shop with Ledger's key and, when the
	// shop refuses it too, flips the binding to token_revoked (drift.go).
	AuthDriftThreshold int
	AuthDriftWindow    time.Duration
	// ShopSilentAfter is how long a shop that used to send may send nothing
	// before the tile says it is silent (LEDGER_SHOP_SILENT_AFTER, default
	// 6h; the admin service reads the same variable).
	ShopSilentAfter time.Duration
	// ActivityFlushEvery is how often the last accepted delivery of each
	// tenant is written to shop_activity, in one statement for all tenants
	// (default 10s; not an environment setting).
	ActivityFlushEvery time.Duration
	// ShopHTTP calls shops to confirm auth drift (a ping); nil means a traced
	// client with a 10 s timeout.
	ShopHTTP *http.Client
}

// Defaults.
const (
	DefaultAddr               = "127.0.0.1:8080"
	DefaultDedupWindow        = 168 * time.Hour
	DefaultKeyRetentionEvery  = time.Hour
	DefaultMaxBodyBytes       = 512 << 10
	DefaultRequestTimeout     = 10 * time.Second
	DefaultReplayCacheSize    = 1_000_000
	DefaultReadHeaderTimeout  = 10 * time.Second
	DefaultReadTimeout        = 10 * time.Second
	DefaultTenantMaxInFlight  = 8
	DefaultAuthDriftThreshold = 5
	DefaultAuthDriftWindow    = 10 * time.Minute
	DefaultActivityFlushEvery = 10 * time.Second

	// maxRequestTimeout keeps the answer inside Magento's 15 s CURLOPT_TIMEOUT.
	maxRequestTimeout = 14 * time.Second
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = DefaultDedupWindow
	}
	if c.KeyRetentionEvery == 0 {
		c.KeyRetentionEvery = DefaultKeyRetentionEvery
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.ReplayCacheSize == 0 {
		c.ReplayCacheSize = DefaultReplayCacheSize
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.TenantMaxInFlight == 0 {
		c.TenantMaxInFlight = DefaultTenantMaxInFlight
	}
	if c.AuthDriftThreshold == 0 {
		c.AuthDriftThreshold = DefaultAuthDriftThreshold
	}
	if c.AuthDriftWindow == 0 {
		c.AuthDriftWindow = DefaultAuthDriftWindow
	}
	if c.ShopSilentAfter == 0 {
		c.ShopSilentAfter = shophealth.DefaultSilentAfter
	}
	if c.ActivityFlushEvery == 0 {
		c.ActivityFlushEvery = DefaultActivityFlushEvery
	}
	return c
}

// ConfigFromEnv reads the INGEST_* variables. Every error names the variable
// and what it expects; all of them are reported at once.
func ConfigFromEnv() (Config, error) {
	var r env.Reader
	c := Config{
		Addr:               r.String("INGEST_ADDR", DefaultAddr),
		DedupWindow:        r.Duration("INGEST_DEDUP_WINDOW", DefaultDedupWindow),
		KeyRetentionEvery:  r.Duration("INGEST_KEY_RETENTION_EVERY", DefaultKeyRetentionEvery),
		MaxBodyBytes:       int64(r.Int("INGEST_MAX_BODY_BYTES", DefaultMaxBodyBytes)),
		RequestTimeout:     r.Duration("INGEST_REQUEST_TIMEOUT", DefaultRequestTimeout),
		ReplayCacheSize:    r.Int("INGEST_REPLAY_CACHE_SIZE", DefaultReplayCacheSize),
		ReadHeaderTimeout:  r.Duration("INGEST_READ_HEADER_TIMEOUT", DefaultReadHeaderTimeout),
		ReadTimeout:        r.Duration("INGEST_READ_TIMEOUT", DefaultReadTimeout),
		TenantMaxInFlight:  r.Int("INGEST_TENANT_MAX_IN_FLIGHT", DefaultTenantMaxInFlight),
		AuthDriftThreshold: r.Int("INGEST_AUTH_DRIFT_THRESHOLD", DefaultAuthDriftThreshold),
		AuthDriftWindow:    r.Duration("INGEST_AUTH_DRIFT_WINDOW", DefaultAuthDriftWindow),
		ShopSilentAfter:    r.Duration("LEDGER_SHOP_SILENT_AFTER", shophealth.DefaultSilentAfter),
	}
	if err := r.Err(); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// Validate reports every setting that cannot work, naming its variable.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("INGEST_ADDR=%q: want host:port, e.g. %s", c.Addr, DefaultAddr))
	}
	if c.DedupWindow < time.Minute {
		errs = append(errs, fmt.Errorf("INGEST_DEDUP_WINDOW=%s: want at least 1m (default %s); the shop's retries span about 4 days", c.DedupWindow, DefaultDedupWindow))
	}
	if c.KeyRetentionEvery < time.Second || c.KeyRetentionEvery > c.DedupWindow {
		errs = append(errs, fmt.Errorf("INGEST_KEY_RETENTION_EVERY=%s: want at least 1s and at most INGEST_DEDUP_WINDOW (%s); default %s",
			c.KeyRetentionEvery, c.DedupWindow, DefaultKeyRetentionEvery))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("INGEST_MAX_BODY_BYTES=%d: want at least 1024 (default %d)", c.MaxBodyBytes, DefaultMaxBodyBytes))
	}
	if c.RequestTimeout <= 0 || c.RequestTimeout > maxRequestTimeout {
		errs = append(errs, fmt.Errorf("INGEST_REQUEST_TIMEOUT=%s: want more than 0 and at most %s (Magento gives up after 15 s)", c.RequestTimeout, maxRequestTimeout))
	}
	if c.ReplayCacheSize < 1 {
		errs = append(errs, fmt.Errorf("INGEST_REPLAY_CACHE_SIZE=%d: want a positive number of entries (default %d)", c.ReplayCacheSize, DefaultReplayCacheSize))
	}
	if c.ReadTimeout <= 0 || c.ReadTimeout > maxRequestTimeout {
		errs = append(errs, fmt.Errorf("INGEST_READ_TIMEOUT=%s: want more than 0 and at most %s (Magento gives up after 15 s)", c.ReadTimeout, maxRequestTimeout))
	}
	if c.ReadHeaderTimeout <= 0 || c.ReadHeaderTimeout > c.ReadTimeout {
		errs = append(errs, fmt.Errorf("INGEST_READ_HEADER_TIMEOUT=%s: want more than 0 and at most INGEST_READ_TIMEOUT (%s)", c.ReadHeaderTimeout, c.ReadTimeout))
	}
	if c.TenantMaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("INGEST_TENANT_MAX_IN_FLIGHT=%d: want at least 1 (default %d)", c.TenantMaxInFlight, DefaultTenantMaxInFlight))
	}
	if c.AuthDriftThreshold < 1 || c.AuthDriftThreshold > 1000 {
		errs = append(errs, fmt.Errorf("INGEST_AUTH_DRIFT_THRESHOLD=%d: want 1 to 1000 refused webhooks (default %d)", c.AuthDriftThreshold, DefaultAuthDriftThreshold))
	}
	if c.AuthDriftWindow < time.Second {
		errs = append(errs, fmt.Errorf("INGEST_AUTH_DRIFT_WINDOW=%s: want at least 1s (default %s)", c.AuthDriftWindow, DefaultAuthDriftWindow))
	}
	if c.ShopSilentAfter < time.Second {
		errs = append(errs, fmt.Errorf("LEDGER_SHOP_SILENT_AFTER=%s: want at least 1s (default %s)", c.ShopSilentAfter, shophealth.DefaultSilentAfter))
	}
	if c.ActivityFlushEvery < 0 { // 0: the default (not an environment setting)
		errs = append(errs, fmt.Errorf("ingest: ActivityFlushEvery=%s: want more than 0 (default %s)", c.ActivityFlushEvery, DefaultActivityFlushEvery))
	}
	return errors.Join(errs...)
}

// LogValue prints the configuration at start.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("addr", c.Addr), slog.String("dedup_window", c.DedupWindow.String()),
		slog.String("key_retention_every", c.KeyRetentionEvery.String()),
		slog.Int64("max_body_bytes", c.MaxBodyBytes), slog.String("request_timeout", c.RequestTimeout.String()),
		slog.Int("replay_cache_size", c.ReplayCacheSize), slog.String("read_header_timeout", c.ReadHeaderTimeout.String()),
		slog.String("read_timeout", c.ReadTimeout.String()), slog.Int("tenant_max_in_flight", c.TenantMaxInFlight),
		slog.Int("auth_drift_threshold", c.AuthDriftThreshold), slog.String("auth_drift_window", c.AuthDriftWindow.String()),
		slog.String("shop_silent_after", c.ShopSilentAfter.String()))
}
