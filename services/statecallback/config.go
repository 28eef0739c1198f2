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
	// Workers is how many batches are delivered concurrently across all shops
	// (STATECALLBACK_WORKERS, default 8). Each batch in flight holds one
	// connection of the entity-lock pool, which has exactly Workers connections.
	Workers int
	// PerShop bounds one shop's batches in flight and its concurrent calls
	// (STATECALLBACK_PER_SHOP, default 4): over HTTP the rows of a batch are
	// posted up to PerShop at a time, over all the shop's batches.
	PerShop int
	// BatchSize is the most results delivered in one batch: one PushSyncState
	// over gRPC, that many POSTs over HTTP (STATECALLBACK_BATCH_SIZE,
	// default 50).
	BatchSize int
	// BatchLinger is the longest a result waits for others of its shop to
	// join its batch (STATECALLBACK_BATCH_LINGER, default 100ms): a batch
	// starts when BatchSize results are waiting or its oldest has waited
	// BatchLinger. Each batch costs one Postgres transaction whatever its
	// size, so a longer linger means fewer commits per result under a steady
	// stream, at the price of that much more latency.
	BatchLinger time.Duration
	// HTTPTimeout bounds one call to a shop, HTTP or gRPC
	// (STATECALLBACK_HTTP_TIMEOUT, default 15s).
	HTTPTimeout time.Duration
	// AckWait is how soon results held by a replica that died are delivered
	// again (STATECALLBACK_ACK_WAIT, default 5s, at least 1s). Results waiting
	// in memory, in a batch or in a call are kept alive with InProgress every
	// AckWait/3, so this does not limit how long a shop may take.
	AckWait time.Duration
	// Addr is where cmd/statecallback serves /healthz, /readyz and /metrics
	// (STATECALLBACK_ADDR, default 127.0.0.1:8085).
	Addr string
	// MaxDeliver is how many deliveries a result gets before a plain retry is
	// dead-lettered (STATECALLBACK_MAX_DELIVER, default 200). Held results (shop
	// down, key refused, binding parked) are never dead-lettered: at their last
	// delivery they are re-queued and start counting again.
	MaxDeliver int
	// MaxAckPending bounds the results in flight or waiting for redelivery on
	// the consumer (STATECALLBACK_MAX_ACK_PENDING, default 10000). Results of a
	// shop that is down wait there; once it is full, no shop gets new results
	// until some are settled, so keep it above the backlog a shop may build up
	// while down.
	MaxAckPending int

	// RetryBase is the first back-off delay; it doubles per delivery
	// (default 2s).
	RetryBase time.Duration
	// RetryMax caps the back-off (STATECALLBACK_RETRY_MAX, default 5m).
	RetryMax time.Duration
	// ParkDelay is the redelivery delay of a result whose shop cannot be called
	// at all: not paired, binding revoked, or Ledger's key refused
	// (token_revoked). It is also how soon parked results drain after the
	// operator re-pairs, and how often a token_revoked shop is pinged to see
	// whether it accepts the key again (STATECALLBACK_PARK_DELAY, default 1m).
	ParkDelay time.Duration

	// GRPCPlaintext allows plaintext gRPC to targets that are not loopback
	// addresses (STATECALLBACK_GRPC_PLAINTEXT, default false: TLS with the
	// system roots; loopback targets are always plaintext).
	GRPCPlaintext bool

	// Transport, when set, delivers for every binding whatever its callback
	// transport (tests use it). nil means HTTPTransport for "http" bindings and
	// GRPCTransport for "grpc" ones.
	Transport Transport
}

// Defaults.
const (
	DefaultWorkers       = 8
	DefaultPerShop       = 4
	DefaultBatchSize     = 50
	DefaultBatchLinger   = 100 * time.Millisecond
	DefaultHTTPTimeout   = 15 * time.Second
	DefaultAckWait       = 5 * time.Second
	DefaultAddr          = "127.0.0.1:8085"
	DefaultMaxDeliver    = 200
	DefaultMaxAckPending = 10000
	DefaultRetryBase     = 2 * time.Second
	DefaultRetryMax      = 5 * time.Minute
	DefaultParkDelay     = time.Minute
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.PerShop == 0 {
		c.PerShop = DefaultPerShop
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchLinger == 0 {
		c.BatchLinger = DefaultBatchLinger
	}
	if c.HTTPTimeout == 0 {
		c.HTTPTimeout = DefaultHTTPTimeout
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultMaxAckPending
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
		Workers:       r.Int("STATECALLBACK_WORKERS", DefaultWorkers),
		PerShop:       r.Int("STATECALLBACK_PER_SHOP", DefaultPerShop),
		BatchSize:     r.Int("STATECALLBACK_BATCH_SIZE", DefaultBatchSize),
		BatchLinger:   r.Duration("STATECALLBACK_BATCH_LINGER", DefaultBatchLinger),
		HTTPTimeout:   r.Duration("STATECALLBACK_HTTP_TIMEOUT", DefaultHTTPTimeout),
		AckWait:       r.Duration("STATECALLBACK_ACK_WAIT", DefaultAckWait),
		Addr:          r.String("STATECALLBACK_ADDR", DefaultAddr),
		MaxDeliver:    r.Int("STATECALLBACK_MAX_DELIVER", DefaultMaxDeliver),
		MaxAckPending: r.Int("STATECALLBACK_MAX_ACK_PENDING", DefaultMaxAckPending),
		RetryMax:      r.Duration("STATECALLBACK_RETRY_MAX", DefaultRetryMax),
		ParkDelay:     r.Duration("STATECALLBACK_PARK_DELAY", DefaultParkDelay),
		GRPCPlaintext: r.Bool("STATECALLBACK_GRPC_PLAINTEXT", false),
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
		errs = append(errs, fmt.Errorf("STATECALLBACK_WORKERS=%d: use 1–256 batches in flight", c.Workers))
	}
	if c.PerShop < 1 || c.PerShop > c.Workers {
		errs = append(errs, fmt.Errorf("STATECALLBACK_PER_SHOP=%d: use 1–%d (at most STATECALLBACK_WORKERS) calls in flight per shop", c.PerShop, c.Workers))
	}
	if c.BatchSize < 1 || c.BatchSize > 500 {
		errs = append(errs, fmt.Errorf("STATECALLBACK_BATCH_SIZE=%d: use 1–500 results per batch", c.BatchSize))
	}
	if c.BatchLinger < 0 || c.BatchLinger > time.Second {
		errs = append(errs, fmt.Errorf("STATECALLBACK_BATCH_LINGER=%s: use 0–1s, e.g. 100ms", c.BatchLinger))
	}
	if c.HTTPTimeout < time.Second || c.HTTPTimeout > 2*time.Minute {
		errs = append(errs, fmt.Errorf("STATECALLBACK_HTTP_TIMEOUT=%s: use a duration between 1s and 2m, e.g. 15s", c.HTTPTimeout))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("STATECALLBACK_ACK_WAIT=%s: use at least 1s, e.g. %s", c.AckWait, DefaultAckWait))
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("STATECALLBACK_ADDR=%q: use host:port, e.g. %s", c.Addr, DefaultAddr))
	}
	if c.MaxDeliver < 2 {
		errs = append(errs, fmt.Errorf("STATECALLBACK_MAX_DELIVER=%d: use at least 2 (default %d); a shop may be down for hours", c.MaxDeliver, DefaultMaxDeliver))
	}
	if c.MaxAckPending < c.BatchSize*c.Workers {
		errs = append(errs, fmt.Errorf("STATECALLBACK_MAX_ACK_PENDING=%d: use at least STATECALLBACK_BATCH_SIZE × STATECALLBACK_WORKERS = %d (default %d)",
			c.MaxAckPending, c.BatchSize*c.Workers, DefaultMaxAckPending))
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase {
		errs = append(errs, fmt.Errorf("STATECALLBACK_RETRY_MAX=%s: the back-off cap must be positive and not below the base %s", c.RetryMax, c.RetryBase))
	}
	if c.ParkDelay <= 0 {
		errs = append(errs, fmt.Errorf("STATECALLBACK_PARK_DELAY=%s: use a positive duration, e.g. 1m", c.ParkDelay))
	}
	return errors.Join(errs...)
}
