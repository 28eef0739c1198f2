package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/ledgersync/ledger/libs/env"
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
	// MaxBodyBytes caps a request body (INGEST_MAX_BODY_BYTES, default 1048576).
	// The shop's envelopes are a few hundred bytes; a bigger body is refused
	// with 413.
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
}

// Defaults.
const (
	DefaultAddr            = "127.0.0.1:8080"
	DefaultDedupWindow     = 168 * time.Hour
	DefaultMaxBodyBytes    = 1 << 20
	DefaultRequestTimeout  = 10 * time.Second
	DefaultReplayCacheSize = 1_000_000

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
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.ReplayCacheSize == 0 {
		c.ReplayCacheSize = DefaultReplayCacheSize
	}
	return c
}

// ConfigFromEnv reads the INGEST_* variables. Every error names the variable
// and what it expects; all of them are reported at once.
func ConfigFromEnv() (Config, error) {
	var r env.Reader
	c := Config{
		Addr:            r.String("INGEST_ADDR", DefaultAddr),
		DedupWindow:     r.Duration("INGEST_DEDUP_WINDOW", DefaultDedupWindow),
		MaxBodyBytes:    int64(r.Int("INGEST_MAX_BODY_BYTES", DefaultMaxBodyBytes)),
		RequestTimeout:  r.Duration("INGEST_REQUEST_TIMEOUT", DefaultRequestTimeout),
		ReplayCacheSize: r.Int("INGEST_REPLAY_CACHE_SIZE", DefaultReplayCacheSize),
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
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("INGEST_MAX_BODY_BYTES=%d: want at least 1024 (default %d)", c.MaxBodyBytes, DefaultMaxBodyBytes))
	}
	if c.RequestTimeout <= 0 || c.RequestTimeout > maxRequestTimeout {
		errs = append(errs, fmt.Errorf("INGEST_REQUEST_TIMEOUT=%s: want more than 0 and at most %s (Magento gives up after 15 s)", c.RequestTimeout, maxRequestTimeout))
	}
	if c.ReplayCacheSize < 1 {
		errs = append(errs, fmt.Errorf("INGEST_REPLAY_CACHE_SIZE=%d: want a positive number of entries (default %d)", c.ReplayCacheSize, DefaultReplayCacheSize))
	}
	return errors.Join(errs...)
}

// LogValue prints the configuration at start.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("addr", c.Addr), slog.String("dedup_window", c.DedupWindow.String()),
		slog.Int64("max_body_bytes", c.MaxBodyBytes), slog.String("request_timeout", c.RequestTimeout.String()),
		slog.Int("replay_cache_size", c.ReplayCacheSize))
}
