// Package process is the start-up and shut-down every Ledger service shares, so
// each main stays a few lines: Connect reads the common settings and opens the
// store, NATS and the streams; Run serves a service's HTTP endpoints and runs
// its consumers until a signal, then drains them with a deadline.
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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
	DatabaseURL  string // LEDGER_DATABASE_URL, required
	NATSURL      string // LEDGER_NATS_URL, default nats://127.0.0.1:4222
	SecretKey    string // LEDGER_SECRET_KEY, required (printed as [redacted])
	NATSReplicas int    // LEDGER_NATS_REPLICAS, default 1 (3 on a production cluster)
	Env          string // LEDGER_ENV, dev or prod (default prod)
}

// LogValue keeps the secret key and database credentials out of logs.
func (s Settings) LogValue() slog.Value {
	return slog.GroupValue(slog.String("nats_url", s.NATSURL), slog.Int("nats_replicas", s.NATSReplicas),
		slog.String("env", s.Env), slog.String("secret_key", "[redacted]"))
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
	if s.Env != "dev" && s.Env != "prod" {
		r.Fail("LEDGER_ENV=%q: use dev or prod", s.Env)
	}
	return s, r.Err()
}

// Infra is what a service gets from Connect. Close releases it.
type Infra struct {
	Settings Settings
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

// Connect opens the store (applying migrations), connects to NATS as name and
// makes sure the streams exist.
func Connect(ctx context.Context, name string, s Settings) (_ *Infra, err error) {
	in := &Infra{Settings: s}
	defer func() {
		if err != nil {
			in.Close()
		}
	}()
	sealer, err := secrets.ParseKeyRing(s.SecretKey)
	if err != nil {
		return nil, err
	}
	if in.Store, err = store.Open(ctx, s.DatabaseURL, sealer); err != nil {
		return nil, err
	}
	// No reconnect buffer: while NATS is away a publish fails at once (a 503 to
	// Magento) instead of waiting in memory where a crash would lose it.
	in.NC, err = nats.Connect(s.NATSURL, nats.Name("ledger-"+name), nats.MaxReconnects(-1), nats.ReconnectBufSize(-1))
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at LEDGER_NATS_URL (%s): %w", s.NATSURL, err)
	}
	if in.JS, err = jetstream.New(in.NC); err != nil {
		return nil, fmt.Errorf("JetStream: %w", err)
	}
	if err := bus.EnsureStreams(ctx, in.JS, s.NATSReplicas); err != nil {
		return nil, err
	}
	return in, nil
}

// Component is one long-running part of a service.
type Component struct {
	Name string
	// Run blocks until its context ends (a consumer), or is nil.
	Run func(ctx context.Context) error
}

// Server returns an HTTP server for handler on addr with Ledger's defaults:
// bounded header reads, idle connections closed after a minute, server errors
// logged at WARN. Callers may tighten it further.
func Server(log *slog.Logger, addr string, handler http.Handler) *http.Server {
	return &http.Server{
		Addr: addr, Handler: handler,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Run serves srv (a service's /healthz, /readyz, /metrics and any API) and
// runs the components until ctx ends or one of them fails; then it stops the
// components, waits up to drain for in-flight work to settle, and shuts the HTTP
// server down. addrVar names the setting of srv.Addr in error messages.
func Run(ctx context.Context, log *slog.Logger, addrVar string, srv *http.Server, drain time.Duration, comps ...Component) (err error) {
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("%s %s: %w", addrVar, srv.Addr, err)
	}
	failed := make(chan error, len(comps)+1)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("http server: %w", err)
		}
	}()
	log.Info("listening", "addr", ln.Addr().String())

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{}, len(comps))
	for _, c := range comps {
		if c.Run == nil {
			done <- struct{}{}
			continue
		}
		go func() {
			defer func() { done <- struct{}{} }()
			if err := c.Run(runCtx); err != nil && runCtx.Err() == nil {
				failed <- fmt.Errorf("%s: %w", c.Name, err)
			} else if runCtx.Err() == nil {
				failed <- fmt.Errorf("%s stopped unexpectedly", c.Name)
			}
		}()
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-failed:
	}
	cancel()
	deadline, stop := context.WithTimeout(context.Background(), drain)
	defer stop()
	for range comps {
		select {
		case <-done:
		case <-deadline.Done():
			err = errors.Join(err, fmt.Errorf("in-flight work did not settle within %s; it will be redelivered", drain))
			return errors.Join(err, srv.Shutdown(deadline))
		}
	}
	return errors.Join(err, srv.Shutdown(deadline))
}
