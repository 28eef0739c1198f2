package mapper

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/ledgersync/ledger/libs/env"
)

// Config is the mapper's configuration. The zero value of a field means its
// default; see ConfigFromEnv for the variables.
type Config struct {
	// Addr serves /healthz, /readyz and /metrics (MAPPER_ADDR, default
	// 127.0.0.1:8083). Only cmd/mapper listens on it.
	Addr string
	// Workers is how many events are mapped concurrently (MAPPER_WORKERS,
	// default 4).
	Workers int
	// HTTPTimeout bounds each canonical fetch from Magento
	// (MAPPER_HTTP_TIMEOUT, default 15s).
	HTTPTimeout time.Duration
	// BaseCurrency is the Sage business's base currency (MAPPER_BASE_CURRENCY,
	// default GBP): contacts trading in any other currency get a reference
	// suffix (quirk 23), and customer.upserted creates its contact in it.
	BaseCurrency string
	// HTTP, when set, is used for Magento calls instead of a client with
	// HTTPTimeout (tests).
	HTTP *http.Client
}

// Defaults.
const (
	DefaultAddr         = "127.0.0.1:8083"
	DefaultWorkers      = 4
	DefaultHTTPTimeout  = 15 * time.Second
	DefaultBaseCurrency = "GBP"
)

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.HTTPTimeout == 0 {
		c.HTTPTimeout = DefaultHTTPTimeout
	}
	if c.BaseCurrency == "" {
		c.BaseCurrency = DefaultBaseCurrency
	}
	return c
}

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// Validate reports every bad setting, each naming its variable and the fix.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 || c.Workers > 256 {
		errs = append(errs, fmt.Errorf("MAPPER_WORKERS=%d: use a number from 1 to 256", c.Workers))
	}
	if c.HTTPTimeout < time.Second || c.HTTPTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("MAPPER_HTTP_TIMEOUT=%s: use a duration from 1s to 5m, e.g. 15s", c.HTTPTimeout))
	}
	if !currencyCode.MatchString(c.BaseCurrency) {
		errs = append(errs, fmt.Errorf("MAPPER_BASE_CURRENCY=%q: use an upper-case ISO 4217 code such as GBP", c.BaseCurrency))
	}
	if c.Addr == "" {
		errs = append(errs, errors.New("MAPPER_ADDR is empty: use host:port, e.g. 127.0.0.1:8083"))
	}
	return errors.Join(errs...)
}

// ConfigFromEnv reads MAPPER_ADDR, MAPPER_WORKERS, MAPPER_HTTP_TIMEOUT and
// MAPPER_BASE_CURRENCY, applies defaults and validates.
func ConfigFromEnv() (Config, error) {
	return configFrom(&env.Reader{})
}

func configFrom(r *env.Reader) (Config, error) {
	c := Config{
		Addr:         r.String("MAPPER_ADDR", DefaultAddr),
		Workers:      r.Int("MAPPER_WORKERS", DefaultWorkers),
		HTTPTimeout:  r.Duration("MAPPER_HTTP_TIMEOUT", DefaultHTTPTimeout),
		BaseCurrency: r.String("MAPPER_BASE_CURRENCY", DefaultBaseCurrency),
	}
	if err := r.Err(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// LogValue prints the configuration at start.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("addr", c.Addr), slog.Int("workers", c.Workers),
		slog.String("http_timeout", c.HTTPTimeout.String()), slog.String("base_currency", c.BaseCurrency))
}
