package admin

import (
	"context"
	"time"

	"github.com/ledgersync/ledger/libs/process"
)

// grpcGrace is how long AdminService calls in flight may finish on shutdown.
const grpcGrace = 15 * time.Second

// Program is the admin service as the runtime runs it: cmd/admin and
// cmd/ledger-dev both start it through here. AdminService is served on
// GRPCAddr; Sage's OAuth endpoints, the dashboard and health on HTTPAddr.
func Program(cfg Config) process.Program {
	cfg = cfg.WithDefaults()
	return process.Program{Name: "admin", Addr: cfg.HTTPAddr, AddrVar: "ADMIN_HTTP_ADDR", Listener: cfg.HTTPListener, Config: cfg,
		Start: func(_ context.Context, in *process.Infra) (process.Started, error) {
			// NATS: row retries, backfills and dead-letter replays publish to
			// JetStream.
			cfg := cfg
			cfg.MetricsTenants = in.Settings.MetricsTenants
			cfg.NATSReplicas = in.Settings.NATSReplicas
			s, err := New(cfg, in.Store, in.Log, WithJetStream(in.JS))
			if err != nil {
				return process.Started{}, err
			}
			grpcComp, err := process.GRPC("AdminService", "ADMIN_GRPC_ADDR", cfg.GRPCAddr, cfg.GRPCListener, s.GRPCServer(), grpcGrace)
			if err != nil {
				return process.Started{}, err
			}
			// Health turns NOT_SERVING first, so balancers stop sending calls
			// while those in flight finish.
			serve := grpcComp.Run
			grpcComp.Run = func(ctx context.Context) error {
				context.AfterFunc(ctx, s.Shutdown)
				return serve(ctx)
			}
			// The scheduled reference-data refresh and reconciliation passes.
			jobs := process.Component{Name: "scheduled jobs", Run: s.RunJobs, Shutdown: 15 * time.Second}
			return process.Started{Handler: s.HTTPHandler(), Components: []process.Component{grpcComp, jobs}}, nil
		}}
}
