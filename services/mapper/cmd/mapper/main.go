// Command mapper runs Ledger's mapper service: it consumes accepted Magento
// events from the OUTBOX stream and publishes SageWrites to the SAGE stream.
// Configuration is by environment (see services/mapper/README.md).
package main

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/ledgersync/ledger/services/mapper"
)

func main() {
	log := telemetry.Logger("mapper", nil)
	if err := run(context.Background()); err != nil {
		log.Error("mapper: stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) (err error) {
	log := telemetry.Logger("mapper", nil)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	r := &env.Reader{}
	dbURL := r.String("LEDGER_DATABASE_URL", "")
	natsURL := r.String("LEDGER_NATS_URL", nats.DefaultURL)
	keyRing := r.String("LEDGER_SECRET_KEY", "")
	if dbURL == "" {
		r.Fail("LEDGER_DATABASE_URL is not set: use a Postgres URL, e.g. postgres://ledger@localhost/ledger")
	}
	if keyRing == "" {
		r.Fail("LEDGER_SECRET_KEY is not set: use id:base64key (generate a key with: head -c32 /dev/urandom | base64)")
	}
	if err := r.Err(); err != nil {
		return err
	}
	cfg, err := mapper.ConfigFromEnv()
	if err != nil {
		return err
	}
	sealer, err := secrets.ParseKeyRing(keyRing)
	if err != nil {
		return err
	}
	log.Info("mapper: starting", "addr", cfg.Addr, "workers", cfg.Workers, "http_timeout", cfg.HTTPTimeout,
		"base_currency", cfg.BaseCurrency)

	st, err := store.Open(ctx, dbURL, sealer)
	if err != nil {
		return err
	}
	defer st.Close()

	nc, err := nats.Connect(natsURL, nats.Name("ledger-mapper"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connecting to NATS at LEDGER_NATS_URL: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	if err := bus.EnsureStreams(ctx, js, 1); err != nil {
		return err
	}

	svc, err := mapper.New(cfg, st, js, log)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("MAPPER_ADDR %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 5 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()

	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	runErr := make(chan error, 1)
	go func() { runErr <- svc.Run(runCtx) }()

	runDone := false
	select {
	case <-ctx.Done():
		log.Info("mapper: shutting down")
	case err = <-srvErr:
		err = fmt.Errorf("health server: %w", err)
	case err = <-runErr:
		runDone = true
		if err == nil {
			err = errors.New("consumer stopped unexpectedly")
		}
	}

	// Drain: stop consuming and let in-flight events settle, then stop HTTP.
	cancelRun()
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !runDone {
		select {
		case rerr := <-runErr:
			err = errors.Join(err, rerr)
		case <-shutdown.Done():
			err = errors.Join(err, errors.New("in-flight events did not settle within 30s; they will be redelivered"))
		}
	}
	if serr := srv.Shutdown(shutdown); serr != nil {
		err = errors.Join(err, serr)
	}
	return err
}
