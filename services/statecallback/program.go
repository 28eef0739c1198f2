package statecallback

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ledgersync/ledger/libs/process"
)

// Program is statecallback as the runtime runs it: cmd/statecallback and
// cmd/ledger-dev both start it through here.
func Program(cfg Config) process.Program {
	cfg = cfg.WithDefaults()
	return process.ConsumerProgram(process.Program{Name: "statecallback", Addr: cfg.Addr, AddrVar: "STATECALLBACK_ADDR", Config: cfg},
		func(in *process.Infra) (*Service, error) { return New(cfg, in.Store, in.JS, in.Log) })
}

// Consuming is statecallback's readiness: its consumer is running.
func (s *Service) Consuming(context.Context) error {
	if !s.running.Load() {
		return errors.New("not consuming RESULTS yet")
	}
	return nil
}

// ShutdownTime is how long Run may take to stop.
func (s *Service) ShutdownTime() time.Duration { return s.ConsumerSpec().ShutdownTime() }

// LogValue prints the configuration at start.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("addr", c.Addr), slog.Int("workers", c.Workers), slog.Int("per_shop", c.PerShop),
		slog.Int("batch_size", c.BatchSize), slog.String("batch_linger", c.BatchLinger.String()),
		slog.String("http_timeout", c.HTTPTimeout.String()), slog.String("ack_wait", c.AckWait.String()), slog.Int("max_deliver", c.MaxDeliver),
		slog.Int("max_ack_pending", c.MaxAckPending), slog.String("retry_max", c.RetryMax.String()),
		slog.String("park_delay", c.ParkDelay.String()), slog.Bool("grpc_plaintext", c.GRPCPlaintext))
}
