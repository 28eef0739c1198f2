package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/nats-io/nats.go"

	"github.com/ledgersync/ledger/libs/env"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
)

// Config configures the relay. ConfigFromEnv reads the documented variables;
// the zero value of an optional field means its default.
type Config struct {
	// Addr serves /healthz, /readyz and /metrics (RELAY_ADDR, default 127.0.0.1:8087).
	Addr string
	// MySQLDSN is the shop's database, go-sql-driver/mysql form
	// (RELAY_MYSQL_DSN, required), e.g. magento:pw@tcp(127.0.0.1:3306)/magento.
	MySQLDSN secrets.String
	// TenantID is the shop's tenant id, the config value byte8/client/tenant_id
	// (RELAY_TENANT_ID, required).
	TenantID string
	// APIKey is the shop's api key, byte8/client/api_key (RELAY_API_KEY,
	// required; never logged). Every message carries a token signed with it.
	APIKey secrets.String
	// NATSURL is where the relay publishes (RELAY_NATS_URL, default
	// nats://127.0.0.1:4222): Ledger's NATS with the tenant's relay user in
	// the URL, or a leaf node next to the shop (docs/relay.md).
	NATSURL secrets.String
	// Inbox is the inbox prefix the JetStream acknowledgements come back on
	// (RELAY_NATS_INBOX, default _INBOX_relay_<tenant>): the relay user's
	// subscribe permission.
	Inbox string
	// PollInterval is the longest wait between two reads of the table, reached
	// while it stays idle (RELAY_POLL_INTERVAL, default 200ms); while rows keep
	// coming the relay reads every BusyPollInterval.
	PollInterval time.Duration
	// BatchSize is the most rows claimed at once (RELAY_BATCH_SIZE, default 50,
	// the module's BATCH_SIZE).
	BatchSize int
	// PublishTimeout bounds the wait for JetStream's acknowledgement of one
	// batch (RELAY_PUBLISH_TIMEOUT, default 5s).
	PublishTimeout time.Duration
	// Backoff is the wait after each transient failure, the last repeated
	// (default the module's BACKOFF_SECONDS, Backoff; not configurable by
	// environment: the shop's admin and inspect expect the module's).
	Backoff []time.Duration
}

// Defaults.
const (
	DefaultAddr           = "127.0.0.1:8087"
	DefaultNATSURL        = nats.DefaultURL
	DefaultPollInterval   = 200 * time.Millisecond
	DefaultBatchSize      = 50
	DefaultPublishTimeout = 5 * time.Second
)

// WithDefaults fills the zero optional fields.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.NATSURL == "" {
		c.NATSURL = DefaultNATSURL
	}
	if c.Inbox == "" {
		c.Inbox = "_INBOX_relay_" + c.TenantID
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if len(c.Backoff) == 0 {
		c.Backoff = Backoff
	}
	return c
}

// Validate names every problem at once, each with its variable and fix.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("RELAY_ADDR=%q: use host:port, e.g. 127.0.0.1:8087", c.Addr))
	}
	if c.MySQLDSN == "" {
		errs = append(errs, errors.New("RELAY_MYSQL_DSN is not set: use the shop database's DSN, e.g. magento:password@tcp(127.0.0.1:3306)/magento"))
	} else if _, err := mysql.ParseDSN(c.MySQLDSN.Reveal()); err != nil {
		errs = append(errs, errors.New("RELAY_MYSQL_DSN does not parse as a go-sql-driver/mysql DSN (user:password@tcp(host:port)/database)"))
	}
	if err := store.ValidTenantID(c.TenantID); err != nil {
		errs = append(errs, fmt.Errorf("RELAY_TENANT_ID=%q: use the shop's byte8/client/tenant_id (%v)", c.TenantID, err))
	}
	if c.APIKey == "" || strings.TrimSpace(c.APIKey.Reveal()) != c.APIKey.Reveal() {
		errs = append(errs, errors.New("RELAY_API_KEY must be the shop's byte8/client/api_key, non-empty and without surrounding spaces"))
	}
	if c.PollInterval < time.Millisecond || c.PollInterval > time.Minute {
		errs = append(errs, fmt.Errorf("RELAY_POLL_INTERVAL=%s: use 1ms to 1m", c.PollInterval))
	}
	if c.BatchSize < 1 || c.BatchSize > 1000 {
		errs = append(errs, fmt.Errorf("RELAY_BATCH_SIZE=%d: use 1 to 1000", c.BatchSize))
	}
	if c.PublishTimeout < 100*time.Millisecond || c.PublishTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("RELAY_PUBLISH_TIMEOUT=%s: use 100ms to 1m", c.PublishTimeout))
	}
	return errors.Join(errs...)
}

// ConfigFromEnv reads the RELAY_* variables.
func ConfigFromEnv() (Config, error) {
	r := &env.Reader{}
	c := Config{
		Addr:           r.String("RELAY_ADDR", DefaultAddr),
		MySQLDSN:       secrets.String(r.String("RELAY_MYSQL_DSN", "")),
		TenantID:       r.String("RELAY_TENANT_ID", ""),
		APIKey:         secrets.String(r.String("RELAY_API_KEY", "")),
		NATSURL:        secrets.String(r.String("RELAY_NATS_URL", DefaultNATSURL)),
		Inbox:          r.String("RELAY_NATS_INBOX", ""),
		PollInterval:   r.Duration("RELAY_POLL_INTERVAL", DefaultPollInterval),
		BatchSize:      r.Int("RELAY_BATCH_SIZE", DefaultBatchSize),
		PublishTimeout: r.Duration("RELAY_PUBLISH_TIMEOUT", DefaultPublishTimeout),
	}.WithDefaults()
	return c, errors.Join(r.Err(), c.Validate())
}

// LogValue shows the configuration without its secrets (the DSN's password,
// the api key, NATS credentials).
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("addr", c.Addr), slog.String("tenant_id", c.TenantID),
		slog.String("mysql_dsn", "[redacted]"), slog.String("api_key", "[redacted]"), slog.String("nats_url", "[redacted]"),
		slog.String("inbox", c.Inbox), slog.Duration("poll_interval", c.PollInterval),
		slog.Int("batch_size", c.BatchSize), slog.Duration("publish_timeout", c.PublishTimeout))
}
