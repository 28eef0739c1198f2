// Command admin runs Ledger's operator surface: the gRPC AdminService that
// ledgerctl speaks on ADMIN_GRPC_ADDR, and Sage's OAuth endpoints, the
// dashboard and health on ADMIN_HTTP_ADDR. Configuration is by environment
// (see services/admin/README.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ledgersync/ledger/libs/process"
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

func run(ctx context.Context, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	settings, serr := process.SettingsFromEnv()
	cfg, cerr := admin.ConfigFromEnv()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("starting", "settings", settings, "config", cfg.String())
	// NATS: row retries, backfills and dead-letter replays publish to JetStream.
	infra, err := process.Connect(ctx, "admin", settings)
	if err != nil {
		return err
	}
	defer infra.Close()
	svc, err := admin.New(cfg, infra.Store, log, admin.WithJetStream(infra.JS))
	if err != nil {
		return err
	}
	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("ADMIN_GRPC_ADDR=%s: %w", cfg.GRPCAddr, err)
	}
	gs := svc.GRPCServer()
	log.Info("AdminService listening", "addr", grpcLis.Addr().String())
	serveGRPC := func(ctx context.Context) error {
		served := make(chan error, 1)
		go func() { served <- gs.Serve(grpcLis) }()
		select {
		case err := <-served:
			return err
		case <-ctx.Done():
		}
		svc.Shutdown()
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(15 * time.Second):
			gs.Stop()
		}
		return nil
	}
	return process.Run(ctx, log, "ADMIN_HTTP_ADDR", process.Server(log, cfg.HTTPAddr, svc.HTTPHandler()), 20*time.Second,
		process.Component{Name: "grpc", Run: serveGRPC})
}
