// Command ingest serves Ledger's Magento-facing HTTP endpoints (see package
// github.com/ledgersync/ledger/services/ingest). Configuration comes from the
// environment: LEDGER_DATABASE_URL, LEDGER_NATS_URL, LEDGER_SECRET_KEY,
// LEDGER_ENV, LEDGER_LOG_LEVEL and the INGEST_* variables.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/env"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	"github.com/ledgersync/ledger/services/ingest"
)

func main() {
	log := telemetry.Logger("ingest", nil)
	if err := run(context.Background(), log); err != nil {
		log.Error("ingest stopped", "err", err)
		os.Exit(1)
	}
}

// common holds the LEDGER_* settings every service shares.
type common struct {
	DatabaseURL string
	NATSURL     string
	Sealer      *secrets.Sealer
}

func commonFromEnv() (common, error) {
	var r env.Reader
	c := common{
		DatabaseURL: r.String("LEDGER_DATABASE_URL", ""),
		NATSURL:     r.String("LEDGER_NATS_URL", nats.DefaultURL),
	}
	mode := r.String("LEDGER_ENV", "prod")
	if mode != "dev" && mode != "prod" {
		r.Fail("LEDGER_ENV=%q: want dev or prod", mode)
	}
	if c.DatabaseURL == "" {
		r.Fail("LEDGER_DATABASE_URL is not set: want a Postgres URL such as postgres://ledger@127.0.0.1:5432/ledger")
	}
	switch key := r.String("LEDGER_SECRET_KEY", ""); {
	case key == "" && mode == "dev":
		r.Fail("LEDGER_SECRET_KEY is not set: ingest opens the sealed api keys the other services stored, so it needs their key ring; `make run` (cmd/ledger-dev) passes it, or export the dev stack's LEDGER_SECRET_KEY")
	case key == "":
		r.Fail("LEDGER_SECRET_KEY is not set: want id:base64key (32 bytes; generate with: head -c32 /dev/urandom | base64), the same ring the other services use")
	default:
		s, err := secrets.ParseKeyRing(key)
		if err != nil {
			r.Fail("%v", err)
		}
		c.Sealer = s
	}
	return c, r.Err()
}

func run(ctx context.Context, log *slog.Logger) (err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, cfgErr := ingest.ConfigFromEnv()
	com, comErr := commonFromEnv()
	if err := errors.Join(cfgErr, comErr); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("ingest starting", "addr", cfg.Addr, "dedup_window", cfg.DedupWindow.String(),
		"max_body_bytes", cfg.MaxBodyBytes, "request_timeout", cfg.RequestTimeout.String(), "nats_url", com.NATSURL)

	st, err := store.Open(ctx, com.DatabaseURL, com.Sealer)
	if err != nil {
		return err
	}
	defer st.Close()

	// Publishes fail at once while disconnected (no reconnect buffer), so a
	// webhook gets a prompt 503 and the shop retries, instead of waiting out
	// the request timeout.
	nc, err := nats.Connect(com.NATSURL, nats.Name("ledger-ingest"), nats.MaxReconnects(-1),
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }))
	if err != nil {
		return fmt.Errorf("connecting to NATS at LEDGER_NATS_URL: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := bus.EnsureStreams(ctx, js, 1); err != nil {
		return err
	}

	svc, err := ingest.New(cfg, st, js, log)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              cfg.Addr,
		Handler:           svc.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      cfg.RequestTimeout + 4*time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("INGEST_ADDR=%s: %w", cfg.Addr, err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("ingest listening", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("ingest shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.RequestTimeout+5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}
