// Package process is the one runtime of every Ledger service. A service
// describes itself as a Program (its address, its configuration, how to build
// it once Postgres and NATS answer); Main runs a Program as a binary and Start
// runs the same Program inside cmd/ledger-dev, so the development stack and the
// end-to-end tests exercise the production wiring.
//
// The runtime serves /healthz and /readyz from the first moment, waits for
// Postgres and NATS with back-off (a service may start before either), checks
// the NATS server's version, builds the service, runs its components (HTTP,
// gRPC, consumers) until a signal, then stops them within their shutdown times.
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/env"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
)

// Settings are the variables every service reads.
type Settings struct {
	DatabaseURL  string     // LEDGER_DATABASE_URL, required
	NATSURL      string     // LEDGER_NATS_URL, default nats://127.0.0.1:4222
	SecretKey    string     // LEDGER_SECRET_KEY, required (printed as [redacted])
	NATSReplicas int        // LEDGER_NATS_REPLICAS, default 1 (3 on a production cluster)
	Env          string     // LEDGER_ENV, dev or prod (default prod)
	LogLevel     slog.Level // LEDGER_LOG_LEVEL, default info
	// MetricsTenants caps the tenants a per-tenant metric names
	// (LEDGER_METRICS_TENANTS, default 20): the ones with the largest
	// values; the rest are summed under tenant="(other)".
	MetricsTenants int
	// Pprof serves net/http/pprof under /debug/pprof/ on the service's
	// address (LEDGER_PPROF, default false): for profiling a benchmark or a
	// test stack, never on an address reachable from outside.
	Pprof bool
}

// LogValue keeps the secret key and database credentials out of logs.
func (s Settings) LogValue() slog.Value {
	return slog.GroupValue(slog.String("nats_url", s.NATSURL), slog.Int("nats_replicas", s.NATSReplicas),
		slog.String("env", s.Env), slog.String("log_level", s.LogLevel.String()), slog.Int("metrics_tenants", s.MetricsTenants),
		slog.Bool("pprof", s.Pprof),
		slog.String("secret_key", "[redacted]"))
}

// SettingsFromEnv reads and validates the common settings, reporting every
// problem at once.
func SettingsFromEnv() (Settings, error) {
	r := &env.Reader{}
	s := Settings{
		DatabaseURL:  r.String("LEDGER_DATABASE_URL", ""),
		NATSURL:      r.String("LEDGER_NATS_URL", nats.DefaultURL),
		SecretKey:    r.String("LEDGER_SECRET_KEY", ""),
		NATSReplicas: r.Int("LEDGER_NATS_REPLICAS", 1),
		Env:          r.String("LEDGER_ENV", "prod"),
		// The constant is telemetry.DefaultTenantSeries (20).
		MetricsTenants: r.Int("LEDGER_METRICS_TENANTS", 20),
		Pprof:          r.Bool("LEDGER_PPROF", false),
	}
	if s.DatabaseURL == "" {
		r.Fail("LEDGER_DATABASE_URL is not set: use a Postgres URL, e.g. postgres://ledger@localhost/ledger")
	}
	if s.SecretKey == "" {
		r.Fail("LEDGER_SECRET_KEY is not set: use id:base64key (generate a key with: head -c32 /dev/urandom | base64)")
	}
	if s.NATSReplicas != 1 && s.NATSReplicas != 3 && s.NATSReplicas != 5 {
		r.Fail("LEDGER_NATS_REPLICAS=%d: use 1 (single server) or 3/5 (a JetStream cluster)", s.NATSReplicas)
	}
	if lvl := r.String("LEDGER_LOG_LEVEL", "info"); s.LogLevel.UnmarshalText([]byte(lvl)) != nil {
		r.Fail("LEDGER_LOG_LEVEL=%q: use debug, info, warn or error", lvl)
	}
	if s.MetricsTenants < 1 || s.MetricsTenants > 1000 {
		r.Fail("LEDGER_METRICS_TENANTS=%d: use 1 to 1000 (tenants named by each per-tenant metric; the rest are folded into one series)", s.MetricsTenants)
	}
	if s.Env != "dev" && s.Env != "prod" {
		r.Fail("LEDGER_ENV=%q: use dev or prod", s.Env)
	}
	return s, r.Err()
}

// StandaloneSettingsFromEnv reads the settings of a program that runs outside
// Ledger's infrastructure (Program.Connect): LEDGER_ENV and LEDGER_LOG_LEVEL
// only; it needs no Ledger database, key ring or NATS of Ledger's.
func StandaloneSettingsFromEnv() (Settings, error) {
	r := &env.Reader{}
	s := Settings{NATSReplicas: 1, Env: r.String("LEDGER_ENV", "prod"), MetricsTenants: 20}
	if lvl := r.String("LEDGER_LOG_LEVEL", "info"); s.LogLevel.UnmarshalText([]byte(lvl)) != nil {
		r.Fail("LEDGER_LOG_LEVEL=%q: use debug, info, warn or error", lvl)
	}
	if s.Env != "dev" && s.Env != "prod" {
		r.Fail("LEDGER_ENV=%q: use dev or prod", s.Env)
	}
	return s, r.Err()
}

// Infra is what a Program's Start gets: the store (migrated), the NATS
// connection and JetStream with Ledger's streams in place.
type Infra struct {
	Settings Settings
	Log      *slog.Logger // the service's logger
	Store    *store.Store
	NC       *nats.Conn
	JS       jetstream.JetStream
}

// Close closes NATS and the store.
func (in *Infra) Close() {
	if in.NC != nil {
		in.NC.Close()
	}
	if in.Store != nil {
		in.Store.Close()
	}
}

// MinNATSVersion is the oldest nats-server Ledger runs on: consumers with
// several filter subjects arrived in 2.10.
const MinNATSVersion = "2.10.0"

// errFatal marks a connection problem that waiting will not fix.
type errFatal struct{ error }

func (e errFatal) Unwrap() error { return e.error }

// Connect opens the store (applying migrations), connects to NATS as name,
// checks the server and makes sure the streams exist. An error wrapped as
// fatal (a key ring that does not parse, a NATS server too old or without
// JetStream) is not worth retrying; IsFatal tells.
func Connect(ctx context.Context, name string, s Settings) (_ *Infra, err error) {
	in := &Infra{Settings: s, Log: slog.New(slog.DiscardHandler)}
	defer func() {
		if err != nil {
			in.Close()
		}
	}()
	sealer, err := secrets.ParseKeyRing(s.SecretKey)
	if err != nil {
		return nil, errFatal{fmt.Errorf("LEDGER_SECRET_KEY: %w", err)}
	}
	if in.Store, err = store.Open(ctx, s.DatabaseURL, sealer); err != nil {
		return nil, fmt.Errorf("database (LEDGER_DATABASE_URL): %w", err)
	}
	// Tenants, bindings and Sage tokens are read for every event and change
	// rarely: keep them in memory, forgotten when a change commits.
	in.Store.CacheTenants()
	// No reconnect buffer: while NATS is away a publish fails at once (a 503 to
	// Magento) instead of waiting in memory where a crash would lose it.
	in.NC, err = nats.Connect(s.NATSURL, nats.Name("ledger-"+name), nats.MaxReconnects(-1), nats.ReconnectBufSize(-1))
	if err != nil {
		return nil, fmt.Errorf("NATS at LEDGER_NATS_URL (%s): %w", s.NATSURL, err)
	}
	if v := in.NC.ConnectedServerVersion(); !versionAtLeast(v, MinNATSVersion) {
		return nil, errFatal{fmt.Errorf("NATS at LEDGER_NATS_URL (%s) is version %s; Ledger needs %s or newer (consumers with several filter subjects)", s.NATSURL, v, MinNATSVersion)}
	}
	if in.JS, err = jetstream.New(in.NC); err != nil {
		return nil, fmt.Errorf("JetStream: %w", err)
	}
	if _, err := in.JS.AccountInfo(ctx); errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
		return nil, errFatal{fmt.Errorf("NATS at LEDGER_NATS_URL (%s) has no JetStream for this account: start nats-server with -js (or jetstream {} in its config)", s.NATSURL)}
	}
	if err := bus.EnsureStreams(ctx, in.JS, s.NATSReplicas); err != nil {
		return nil, err
	}
	// A server that comes back without its store (lost, or restored from an
	// older backup) has no streams: make them again on every reconnect, so
	// the consumers (which ensure themselves) find them.
	in.NC.SetReconnectHandler(func(*nats.Conn) {
		go func() {
			rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := bus.EnsureStreams(rctx, in.JS, s.NATSReplicas); err != nil {
				in.Log.Warn("reconnected to NATS, but Ledger's streams could not be ensured; /readyz says which", "err", err)
			}
		}()
	})
	return in, nil
}

// IsFatal reports whether a Connect error will not go away by waiting.
func IsFatal(err error) bool {
	var f errFatal
	return errors.As(err, &f)
}

// versionAtLeast compares dotted versions ("2.10.4" ≥ "2.10.0"); a suffix
// such as "-beta" is ignored.
func versionAtLeast(have, want string) bool {
	parse := func(v string) [3]int {
		var p [3]int
		v, _, _ = strings.Cut(v, "-")
		for i, f := range strings.SplitN(v, ".", 3) {
			p[i], _ = strconv.Atoi(f)
		}
		return p
	}
	h, w := parse(have), parse(want)
	for i := range h {
		if h[i] != w[i] {
			return h[i] > w[i]
		}
	}
	return true
}
