package mapper

import (
	"context"
	"errors"
	"time"

	"github.com/ledgersync/ledger/libs/process"
)

// Program is the mapper as the runtime runs it: cmd/mapper and cmd/ledger-dev
// both start it through here.
func Program(cfg Config) process.Program {
	cfg = cfg.WithDefaults()
	return process.ConsumerProgram(process.Program{Name: "mapper", Addr: cfg.Addr, AddrVar: "MAPPER_ADDR", Config: cfg},
		func(in *process.Infra) (*Service, error) { return New(cfg, in.Store, in.JS, in.Log) })
}

// Consuming is the mapper's readiness: its consumer is running.
func (s *Service) Consuming(context.Context) error {
	if !s.running.Load() {
		return errors.New("not consuming OUTBOX yet")
	}
	return nil
}

// ShutdownTime is how long Run may take to stop.
func (s *Service) ShutdownTime() time.Duration { return s.Spec().ShutdownTime() }
