// Command admin runs Ledger's operator surface: the gRPC AdminService on
// ADMIN_GRPC_ADDR and the OAuth callback, dashboard and health endpoints on
// ADMIN_HTTP_ADDR. It connects to NATS (LEDGER_NATS_URL) for row retries,
// backfills and dead-letter replays. See the admin package and
// services/admin/README.md.
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
	"github.com/ledgersync/ledger/services/admin"
)

func main() {
	log := telemetry.Logger("admin", nil)
	if err := run(context.Background(), log); err != nil {
		log.Error("admin stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger) (err error) {
	cfg, cfgErr := admin.ConfigFromEnv()
	var r env.Reader
	dbURL := r.String("LEDGER_DATABASE_URL", "")
	natsURL := r.String("LEDGER_NATS_URL", nats.DefaultURL)
	keyRing := r.String("LEDGER_SECRET_KEY", "")
	if dbURL == "" {
		r.Fail("LEDGER_DATABASE_URL is not set: use a Postgres URL such as postgres://ledger@127.0.0.1:5432/ledger")
	}
	if keyRing == "" {
		r.Fail("LEDGER_SECRET_KEY is not set: use id:base64key, e.g. k1:$(head -c32 /dev/urandom | base64)")
	}
	if err := errors.Join(cfgErr, r.Err()); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	sealer, err := secrets.ParseKeyRing(keyRing)
	if err != nil {
		return err
	}
	log.Info("starting", "config", cfg.String())

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := store.Open(ctx, dbURL, sealer)
	if err != nil {
		return err
	}
	defer st.Close()

	// NATS: row retries, backfills and dead-letter replays publish to JetStream.
	nc, err := nats.Connect(natsURL, nats.Name("ledger-admin"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connecting to NATS at LEDGER_NATS_URL: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := bus.EnsureStreams(ctx, js, 1); err != nil {
		return err
	}

	svc, err := admin.New(cfg, st, log, admin.WithJetStream(js))
	if err != nil {
		return err
	}
	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("ADMIN_GRPC_ADDR=%s: %w", cfg.GRPCAddr, err)
	}
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("ADMIN_HTTP_ADDR=%s: %w", cfg.HTTPAddr, err)
	}
	gs := svc.GRPCServer()
	hs := &http.Server{Handler: svc.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 2)
	go func() { errc <- fmt.Errorf("grpc server: %w", gs.Serve(grpcLis)) }()
	go func() { errc <- fmt.Errorf("http server: %w", hs.Serve(httpLis)) }()
	log.Info("listening", "grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String())

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-errc:
	}

	svc.Shutdown()
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-shutCtx.Done():
		gs.Stop()
	}
	if herr := hs.Shutdown(shutCtx); herr != nil && !errors.Is(herr, http.ErrServerClosed) {
		err = errors.Join(err, herr)
	}
	return err
}
