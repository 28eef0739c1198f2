// Command statecallback runs Ledger's statecallback service: it mirrors terminal
// sync results into each shop's Magento sync-state table and serves /healthz,
// /readyz and /metrics on STATECALLBACK_ADDR.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	"github.com/ledgersync/ledger/services/statecallback"
)

func main() {
	log := telemetry.Logger("statecallback", nil)
	if err := run(context.Background(), log); err != nil {
		log.Error("statecallback stopped", "err", err)
		os.Exit(1)
	}
}

// common holds the settings every Ledger service reads.
type common struct {
	DatabaseURL secrets.String
	NATSURL     string
	SecretKey   secrets.String
}

func commonFromEnv() (common, error) {
	var r env.Reader
	c := common{
		DatabaseURL: secrets.String(r.String("LEDGER_DATABASE_URL", "")),
		NATSURL:     r.String("LEDGER_NATS_URL", nats.DefaultURL),
		SecretKey:   secrets.String(r.String("LEDGER_SECRET_KEY", "")),
	}
	if c.DatabaseURL == "" {
		r.Fail("LEDGER_DATABASE_URL is not set: use postgres://user:password@host:5432/ledger")
	}
	if c.SecretKey == "" {
		r.Fail("LEDGER_SECRET_KEY is not set: use id:base64key (generate a key with: head -c32 /dev/urandom | base64)")
	}
	return c, r.Err()
}

func run(ctx context.Context, log *slog.Logger) (err error) {
	com, cerr := commonFromEnv()
	cfg, serr := statecallback.ConfigFromEnv()
	if err := errors.Join(cerr, serr); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("starting", "workers", cfg.Workers, "per_shop", cfg.PerShop, "batch_size", cfg.BatchSize,
		"batch_linger", cfg.BatchLinger.String(), "http_timeout", cfg.HTTPTimeout.String(), "addr", cfg.Addr,
		"max_deliver", cfg.MaxDeliver, "max_ack_pending", cfg.MaxAckPending, "retry_max", cfg.RetryMax.String(),
		"park_delay", cfg.ParkDelay.String(), "grpc_plaintext", cfg.GRPCPlaintext, "nats", com.NATSURL)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	sealer, err := secrets.ParseKeyRing(com.SecretKey.Reveal())
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, com.DatabaseURL.Reveal(), sealer)
	if err != nil {
		return err
	}
	defer st.Close()

	nc, err := nats.Connect(com.NATSURL, nats.Name("ledger-statecallback"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connecting to NATS at %s (LEDGER_NATS_URL): %w", com.NATSURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := bus.EnsureStreams(ctx, js, 1); err != nil {
		return err
	}

	svc, err := statecallback.New(cfg, st, js, log)
	if err != nil {
		return err
	}

	srv := &http.Server{Addr: cfg.Addr, Handler: svc.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 2)
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serving %s (STATECALLBACK_ADDR): %w", cfg.Addr, err)
		}
	}()
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
	case err = <-done:
		if err == nil {
			err = errors.New("consumer stopped unexpectedly")
		}
		done <- nil // Run has returned; let the drain below see it
	}
	cancelRun()

	// Run waits for the batches in flight (each stops after its current call)
	// and hands queued results back; give it that long, then stop serving
	// health endpoints.
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*cfg.HTTPTimeout+35*time.Second)
	defer cancel()
	select {
	case rerr := <-done:
		err = errors.Join(err, rerr)
	case <-shutdown.Done():
		err = errors.Join(err, errors.New("in-flight deliveries did not finish in time; JetStream redelivers them"))
	}
	return errors.Join(err, srv.Shutdown(shutdown))
}
