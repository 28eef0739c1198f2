// Command statecallback runs Ledger's statecallback service: it mirrors terminal
// sync results into each shop's Magento sync-state table and serves /healthz,
// /readyz and /metrics on STATECALLBACK_ADDR.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ledgersync/ledger/libs/process"
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

func run(ctx context.Context, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	settings, serr := process.SettingsFromEnv()
	cfg, cerr := statecallback.ConfigFromEnv()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("starting", "settings", settings, "workers", cfg.Workers, "per_shop", cfg.PerShop, "batch_size", cfg.BatchSize,
		"batch_linger", cfg.BatchLinger.String(), "http_timeout", cfg.HTTPTimeout.String(), "addr", cfg.Addr,
		"max_deliver", cfg.MaxDeliver, "max_ack_pending", cfg.MaxAckPending, "retry_max", cfg.RetryMax.String(),
		"park_delay", cfg.ParkDelay.String(), "grpc_plaintext", cfg.GRPCPlaintext)
	infra, err := process.Connect(ctx, "statecallback", settings)
	if err != nil {
		return err
	}
	defer infra.Close()
	svc, err := statecallback.New(cfg, infra.Store, infra.JS, log)
	if err != nil {
		return err
	}
	return process.Run(ctx, log, "STATECALLBACK_ADDR", process.Server(log, cfg.Addr, svc.Handler()), 30*time.Second,
		process.Component{Name: "statecallback", Run: svc.Run})
}
