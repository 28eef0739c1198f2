package statecallback

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/ledgersync/ledger/libs/env"
)

// Config configures the service. The zero value of every field means its
// default; ConfigFromEnv reads the documented environment variables.
type Config struct {
	// Workers is how many results are delivered concurrently
	// (STATECALLBACK_WORKERS, default 8).
	Workers int
	// HTTPTimeout bounds one call to a shop (STATECALLBACK_HTTP_TIMEOUT,
	// default 15s).
	HTTPTimeout time.Duration
	// Addr is where cmd/statecallback serves /healthz, /readyz and /metrics
	// (STATECALLBACK_ADDR, default 127.0.0.1:8085).
	Addr string
	// MaxDeliver is how many deliveries a result gets before it is
	// dead-lettered (STATECALLBACK_MAX_DELIVER, default 200: at the 5 min cap
	// that is more than 16 h of a shop being down, and 33 h of a parked tenant).
	MaxDeliver int

	// RetryBase is the first back-off delay; it doubles per delivery
	// (default 2s).
	RetryBase time.Duration
	// RetryMax caps the back-off (default 5m).
	RetryMax time.Duration
	// ParkDelay is the redelivery delay of a result whose tenant cannot be
	// called at all: not paired, binding revoked, or its key refused by the
	// shop (default 10m).
	ParkDelay time.Duration

	// Transport delivers sync states; nil means an HTTPTransport with
	// HTTPTimeout.
	Transport Transport
}

// Defaults.
const (
	DefaultWorkers     = 8
	DefaultHTTPTimeout = 15 * time.Second
	DefaultAddr        = "127.0.0.1:8085"
	DefaultMaxDeliver  = 200
	DefaultRetryBase   = 2 * time.Second
	DefaultRetryMax    = 5 * time.Minute
	DefaultParkDelay   = 10 * time.Minute
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.HTTPTimeout == 0 {
		c.HTTPTimeout = DefaultHTTPTimeout
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.RetryBase == 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.ParkDelay == 0 {
		c.ParkDelay = DefaultParkDelay
	}
	return c
}

// ConfigFromEnv reads the STATECALLBACK_* variables, reporting every bad one.
func ConfigFromEnv() (Config, error) {
	var r env.Reader
	c := Config{
		Workers:     r.Int("STATECALLBACK_WORKERS", DefaultWorkers),
		HTTPTimeout: r.Duration("STATECALLBACK_HTTP_TIMEOUT", DefaultHTTPTimeout),
		Addr:        r.String("STATECALLBACK_ADDR", DefaultAddr),
		MaxDeliver:  r.Int("STATECALLBACK_MAX_DELIVER", DefaultMaxDeliver),
	}
	if err := r.Err(); err != nil {
		return Config{}, err
	}
	c = c.WithDefaults()
	return c, c.Validate()
}

// Validate checks a config after defaults are applied.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 || c.Workers > 256 {
		errs = append(errs, fmt.Errorf("STATECALLBACK_WORKERS=%d: use 1–256 concurrent deliveries", c.Workers))
	}
	if c.HTTPTimeout < time.Second || c.HTTPTimeout > 2*time.Minute {
		errs = append(errs, fmt.Errorf("STATECALLBACK_HTTP_TIMEOUT=%s: use a duration between 1s and 2m, e.g. 15s", c.HTTPTimeout))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("STATECALLBACK_ADDR=%q: use host:port, e.g. %s", c.Addr, DefaultAddr))
	}
	if c.MaxDeliver < 2 {
		errs = append(errs, fmt.Errorf("STATECALLBACK_MAX_DELIVER=%d: use at least 2 (default %d); a shop may be down for hours", c.MaxDeliver, DefaultMaxDeliver))
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase {
		errs = append(errs, fmt.Errorf("retry back-off: base %s must be positive and not above the cap %s", c.RetryBase, c.RetryMax))
	}
	if c.ParkDelay <= 0 {
		errs = append(errs, fmt.Errorf("park delay %s must be positive", c.ParkDelay))
	}
	return errors.Join(errs...)
}
