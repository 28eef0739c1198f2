// Command sage-writer runs Ledger's Sage writer: it consumes SageWrites from the
// SAGE stream and writes them into Sage Business Cloud Accounting v3.1.
// Configuration is by environment (see services/sage-writer/README.md).
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
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
)

func main() {
	log := telemetry.Logger("sage-writer", nil)
	if err := run(context.Background(), log); err != nil {
		log.Error("sage-writer stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	settings, serr := process.SettingsFromEnv()
	cfg, cerr := sagewriter.ConfigFromEnv()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("starting", "settings", settings, "config", cfg)
	infra, err := process.Connect(ctx, "sage-writer", settings)
	if err != nil {
		return err
	}
	defer infra.Close()
	svc, err := sagewriter.New(cfg, infra.Store, infra.JS, log)
	if err != nil {
		return err
	}
	// Run drains its in-flight writes once its context ends.
	return process.Run(ctx, log, "WRITER_ADDR", process.Server(log, cfg.Addr, svc.Handler()), 30*time.Second,
		process.Component{Name: "writer", Run: svc.Run})
}
