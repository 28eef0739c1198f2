package mapper

import (
	"context"
	"errors"

	"github.com/ledgersync/ledger/libs/process"
)

// Program is the mapper as the runtime runs it: cmd/mapper and cmd/ledger-dev
// both start it through here.
func Program(cfg Config) process.Program {
	cfg = cfg.WithDefaults()
	return process.Program{Name: "mapper", Addr: cfg.Addr, AddrVar: "MAPPER_ADDR", Config: cfg,
		Start: func(_ context.Context, in *process.Infra) (process.Started, error) {
			s, err := New(cfg, in.Store, in.JS, in.Log)
			if err != nil {
				return process.Started{}, err
			}
			return process.Started{
				Handler:    s.Handler(),
				Components: []process.Component{{Name: "mapper", Run: s.Run, Shutdown: s.Spec().ShutdownTime()}},
				Ready:      []process.Check{{Name: "consumer", Check: s.consuming}},
			}, nil
		}}
}

// consuming is the mapper's readiness: its consumer is running.
func (s *Service) consuming(context.Context) error {
	if !s.running.Load() {
		return errors.New("not consuming OUTBOX yet")
	}
	return nil
}
