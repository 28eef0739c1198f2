package ingest

import (
	"context"
	"net/http"
	"time"

	"github.com/ledgersync/ledger/libs/process"
)

// Program is ingest as the runtime runs it: cmd/ingest and cmd/ledger-dev both
// start it through here.
func Program(cfg Config) process.Program {
	cfg = cfg.WithDefaults()
	return process.Program{Name: "ingest", Addr: cfg.Addr, AddrVar: "INGEST_ADDR", Config: cfg,
		Tune: func(srv *http.Server) {
			srv.ReadTimeout = 10 * time.Second
			srv.WriteTimeout = cfg.RequestTimeout + 4*time.Second
		},
		// A webhook being accepted finishes during shutdown: the shop gets its
		// answer once the event is in JetStream.
		HTTPDrain: cfg.RequestTimeout + 5*time.Second,
		Start: func(_ context.Context, in *process.Infra) (process.Started, error) {
			cfg := cfg
			cfg.NATSReplicas = in.Settings.NATSReplicas
			s, err := New(cfg, in.Store, in.JS, in.Log)
			if err != nil {
				return process.Started{}, err
			}
			return process.Started{Handler: s.Handler()}, nil
		}}
}
