package sagewriter

import (
	"context"
	"errors"

	"github.com/ledgersync/ledger/libs/process"
)

// Program is the writer as the runtime runs it: cmd/sage-writer and
// cmd/ledger-dev both start it through here.
func Program(cfg Config) process.Program {
	cfg = cfg.withDefaults()
	return process.Program{Name: "sage-writer", Addr: cfg.Addr, AddrVar: "WRITER_ADDR", Config: cfg,
		Start: func(_ context.Context, in *process.Infra) (process.Started, error) {
			s, err := New(cfg, in.Store, in.JS, in.Log)
			if err != nil {
				return process.Started{}, err
			}
			return process.Started{
				Handler:    s.Handler(),
				Components: []process.Component{{Name: "writer", Run: s.Run, Shutdown: s.tenantSpec("").ShutdownTime()}},
				Ready:      []process.Check{{Name: "consumers", Check: s.consuming}},
			}, nil
		}}
}

// consuming is the writer's readiness: its per-tenant consumers are running.
func (s *Service) consuming(context.Context) error {
	if !s.ready.Load() {
		return errors.New("the tenants' consumers are not running yet")
	}
	return nil
}
