// Command sage-writer runs Ledger's Sage writer: it consumes SageWrites from the
// SAGE stream and writes them into Sage Business Cloud Accounting v3.1.
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
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
)

func main() {
	log := telemetry.Logger("sage-writer", nil)
	if err := run(context.Background(), log); err != nil {
		log.Error("sage-writer stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger) (err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	r := &env.Reader{}
	dbURL := r.String("LEDGER_DATABASE_URL", "")
	natsURL := r.String("LEDGER_NATS_URL", nats.DefaultURL)
	keySpec := r.String("LEDGER_SECRET_KEY", "")
	if dbURL == "" {
		r.Fail("LEDGER_DATABASE_URL is required: a postgres:// URL")
	}
	if keySpec == "" {
		r.Fail("LEDGER_SECRET_KEY is required: id:base64key (generate a key with: head -c32 /dev/urandom | base64)")
	}
	cfg, cfgErr := sagewriter.ConfigFromEnv()
	if err := errors.Join(r.Err(), cfgErr); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	sealer, err := secrets.ParseKeyRing(keySpec)
	if err != nil {
		return err
	}

	st, err := store.Open(ctx, dbURL, sealer)
	if err != nil {
		return err
	}
	defer st.Close()

	nc, err := nats.Connect(natsURL, nats.Name("sage-writer"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connecting to NATS at %s: %w", natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := bus.EnsureStreams(ctx, js, 1); err != nil {
		return err
	}

	svc, err := sagewriter.New(cfg, st, js, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("WRITER_ADDR=%s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 5 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()
	log.Info("sage-writer health and metrics", "addr", ln.Addr().String())

	runErr := make(chan error, 1)
	go func() { runErr <- svc.Run(ctx) }()

	select {
	case <-ctx.Done():
		err = <-runErr // Run drains its in-flight writes once ctx is done
	case err = <-runErr:
	case err = <-httpErr:
		stop()
		err = errors.Join(err, <-runErr)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(shutdownCtx))
}
