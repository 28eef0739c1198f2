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
			srv.ReadHeaderTimeout = cfg.ReadHeaderTimeout
			srv.ReadTimeout = cfg.ReadTimeout
			// The answer goes out after the body is read (ReadTimeout) and
			// the work is done (RequestTimeout, counted from the handler's
			// start), whichever ends last.
			srv.WriteTimeout = max(cfg.ReadTimeout, cfg.RequestTimeout) + 4*time.Second
			srv.MaxHeaderBytes = maxHeaderBytes
		},
		// A webhook being accepted finishes during shutdown: the shop gets its
		// answer once the event is in JetStream.
		HTTPDrain: cfg.RequestTimeout + 5*time.Second,
		Start: func(_ context.Context, in *process.Infra) (process.Started, error) {
			cfg := cfg
			cfg.NATSReplicas = in.Settings.NATSReplicas
			// An accepted body travels in one NATS message.
			if err := checkBodyFitsStream(cfg.MaxBodyBytes, in.NC.MaxPayload()); err != nil {
				return process.Started{}, err
			}
			s, err := New(cfg, in.Store, in.JS, in.Log)
			if err != nil {
				return process.Started{}, err
			}
			return process.Started{Handler: s.Handler(), Components: []process.Component{
				{Name: "webhook-key-retention", Run: s.RunKeyRetention},
				{Name: "shop-activity-flush", Run: s.RunActivityFlush},
				{Name: "relay-consumer", Run: s.RunRelayed, Shutdown: s.RelaySpec().ShutdownTime()},
			}, Ready: []process.Check{{Name: "relay-consumer", Check: s.RelayConsuming}}}, nil
		}}
}
