// Command ingest runs Ledger's ingest service: it receives the Byte8 Magento
// modules' signed webhooks and publishes them to the OUTBOX stream.
// Configuration is by environment (see services/ingest/README.md).
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
	"github.com/ledgersync/ledger/services/ingest"
)

func main() {
	log := telemetry.Logger("ingest", nil)
	if err := run(context.Background(), log); err != nil {
		log.Error("ingest stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	settings, serr := process.SettingsFromEnv()
	cfg, cerr := ingest.ConfigFromEnv()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("starting", "settings", settings, "addr", cfg.Addr, "dedup_window", cfg.DedupWindow.String(),
		"max_body_bytes", cfg.MaxBodyBytes, "request_timeout", cfg.RequestTimeout.String())
	infra, err := process.Connect(ctx, "ingest", settings)
	if err != nil {
		return err
	}
	defer infra.Close()
	svc, err := ingest.New(cfg, infra.Store, infra.JS, log)
	if err != nil {
		return err
	}
	srv := process.Server(log, cfg.Addr, svc.Handler())
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = cfg.RequestTimeout + 4*time.Second
	// A webhook being accepted finishes even during shutdown: the shop must get
	// its answer once the event is in JetStream.
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	return process.Run(ctx, log, "INGEST_ADDR", srv, cfg.RequestTimeout+5*time.Second)
}
