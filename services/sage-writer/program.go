package sagewriter

import (
	"context"
	"errors"
	"time"

	"github.com/ledgersync/ledger/libs/process"
)

// Program is the writer as the runtime runs it: cmd/sage-writer and
// cmd/ledger-dev both start it through here.
func Program(cfg Config) process.Program {
	cfg = cfg.withDefaults()
	return process.ConsumerProgram(process.Program{Name: "sage-writer", Addr: cfg.Addr, AddrVar: "WRITER_ADDR", Config: cfg},
		func(in *process.Infra) (*Service, error) {
			cfg := cfg
			cfg.NATSReplicas = in.Settings.NATSReplicas
			cfg.MetricsTenants = in.Settings.MetricsTenants
			return New(cfg, in.Store, in.JS, in.Log)
		})
}

// Consuming is the writer's readiness: its per-tenant consumers are running.
func (s *Service) Consuming(context.Context) error {
	if !s.ready.Load() {
		return errors.New("the tenants' consumers are not running yet")
	}
	return nil
}

// ShutdownTime is how long Run may take to stop.
func (s *Service) ShutdownTime() time.Duration { return s.tenantSpec("").ShutdownTime() }
