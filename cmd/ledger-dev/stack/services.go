package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/services/admin"
	"github.com/ledgersync/ledger/services/ingest"
	"github.com/ledgersync/ledger/services/mapper"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
	"github.com/ledgersync/ledger/services/sage-writer/budget"
	"github.com/ledgersync/ledger/services/statecallback"
)

// The development stack's writer pacing: the simulator is not throttled, and a
// new tenant's consumer should appear within a second.
const (
	DevBusinessPerMinute = 6000
	DevBusinessBurst     = 20
	DevTenantScan        = time.Second
)

// startServices builds every service with the stack's store, JetStream and
// simulators, exactly as their own main packages do from the environment.
func (s *Stack) startServices(ctx context.Context, opt Options) error {
	// ingest: Magento's webhooks.
	ing, err := ingest.New(ingest.Config{}.WithDefaults(), s.Store, s.JS, s.Log.With("service", "ingest"))
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if s.IngestURL, err = s.serve("ingest", ing.Handler()); err != nil {
		return err
	}

	// mapper.
	mp, err := mapper.New(mapper.Config{}.WithDefaults(), s.Store, s.JS, s.Log.With("service", "mapper"))
	if err != nil {
		return fmt.Errorf("mapper: %w", err)
	}
	if s.MapperURL, err = s.serve("mapper health", mp.Handler()); err != nil {
		return err
	}
	s.goRun("mapper", mp.Run)

	// sage-writer (unless a test runs it as its own process).
	if !opt.NoWriter {
		wr, err := sagewriter.New(sagewriter.Config{
			Endpoints: s.SageEndpoints(), ClientID: SageClientID, ClientSecret: secrets.String(SageClientSecret),
			// The simulator has no per-business throttle unless a test sets one;
			// Sage's own pacing default (100/min) would only slow the demo.
			Budget:     budget.Config{BusinessPerMinute: DevBusinessPerMinute, BusinessBurst: DevBusinessBurst},
			TenantScan: DevTenantScan,
		}, s.Store, s.JS, s.Log.With("service", "sage-writer"))
		if err != nil {
			return fmt.Errorf("sage-writer: %w", err)
		}
		if s.WriterURL, err = s.serve("sage-writer health", wr.Handler()); err != nil {
			return err
		}
		s.goRun("sage-writer", wr.Run)
	}

	// statecallback.
	sc, err := statecallback.New(statecallback.Config{}.WithDefaults(), s.Store, s.JS, s.Log.With("service", "statecallback"))
	if err != nil {
		return fmt.Errorf("statecallback: %w", err)
	}
	if s.StateCallbackURL, err = s.serve("statecallback health", sc.Handler()); err != nil {
		return err
	}
	s.goRun("statecallback", sc.Run)

	// admin: gRPC for ledgerctl, HTTP for Sage OAuth and the dashboard. Its
	// public URL (the OAuth redirect) must be known before it is built.
	httpLn, httpURL, err := listen("admin http")
	if err != nil {
		return err
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		httpLn.Close()
		return fmt.Errorf("admin grpc: listen: %w", err)
	}
	ad, err := admin.New(admin.Config{
		GRPCAddr: grpcLn.Addr().String(), HTTPAddr: strings.TrimPrefix(httpURL, "http://"), PublicURL: httpURL,
		AdminToken: secrets.String(s.AdminToken), Env: "dev", LedgerBaseURL: s.IngestURL,
		Sage: s.SageEndpoints(), SageClientID: SageClientID, SageClientSecret: secrets.String(SageClientSecret),
	}.WithDefaults(), s.Store, s.Log.With("service", "admin"), admin.WithJetStream(s.JS))
	if err != nil {
		httpLn.Close()
		grpcLn.Close()
		return fmt.Errorf("admin: %w", err)
	}
	s.AdminHTTPURL, s.AdminGRPCAddr = httpURL, grpcLn.Addr().String()
	s.serveOn("admin http", httpLn, ad.HTTPHandler())
	gs := ad.GRPCServer()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := gs.Serve(grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.report(fmt.Errorf("admin grpc: %w", err))
		}
	}()
	s.onClose(func() { ad.Shutdown(); gs.GracefulStop() })
	return nil
}
