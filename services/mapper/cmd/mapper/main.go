// Command mapper runs Ledger's mapper service: it consumes accepted Magento
// events from the OUTBOX stream and publishes SageWrites to the SAGE stream.
// Configuration is by environment (see services/mapper/README.md).
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
	"github.com/ledgersync/ledger/services/mapper"
)

func main() {
	log := telemetry.Logger("mapper", nil)
	if err := run(context.Background(), log); err != nil {
		log.Error("mapper stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	settings, serr := process.SettingsFromEnv()
	cfg, cerr := mapper.ConfigFromEnv()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("starting", "settings", settings, "addr", cfg.Addr, "workers", cfg.Workers,
		"http_timeout", cfg.HTTPTimeout.String(), "base_currency", cfg.BaseCurrency)
	infra, err := process.Connect(ctx, "mapper", settings)
	if err != nil {
		return err
	}
	defer infra.Close()
	svc, err := mapper.New(cfg, infra.Store, infra.JS, log)
	if err != nil {
		return err
	}
	// Run drains in-flight events once its context ends.
	return process.Run(ctx, log, "MAPPER_ADDR", process.Server(log, cfg.Addr, svc.Handler()), 30*time.Second,
		process.Component{Name: "mapper", Run: svc.Run})
}
