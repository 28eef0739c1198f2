package stack

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/ledgersync/ledger/libs/process"
	"github.com/ledgersync/ledger/libs/sage/budget"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/services/admin"
	"github.com/ledgersync/ledger/services/ingest"
	"github.com/ledgersync/ledger/services/mapper"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
	"github.com/ledgersync/ledger/services/statecallback"
)

// The development stack's writer pacing: the simulator is not throttled, and a
// new tenant's consumer should appear within a second.
const (
	DevBusinessPerMinute = 6000
	DevBusinessBurst     = 20
	DevTenantScan        = time.Second
)

// Settings are the common settings every service of this stack runs with.
func (s *Stack) Settings() process.Settings {
	return process.Settings{DatabaseURL: s.DatabaseURL, NATSURL: s.NATSURL, SecretKey: s.SecretKey, NATSReplicas: s.NATSReplicas, Env: "dev"}
}

// startServices runs every service through the same Program its main runs,
// each with its own store pool and NATS connection, on loopback ports.
func (s *Stack) startServices(ctx context.Context, opt Options) error {
	if opt.External {
		return nil
	}
	// ingest: Magento's webhooks.
	icfg := ingest.Config{Addr: loopback}
	if opt.IngestConfig != nil {
		opt.IngestConfig(&icfg)
	}
	ing, err := s.startProgram(ctx, ingest.Program(icfg))
	if err != nil {
		return err
	}
	s.IngestURL = ing.URL()

	mp, err := s.startProgram(ctx, mapper.Program(mapper.Config{Addr: loopback}))
	if err != nil {
		return err
	}
	s.MapperURL = mp.URL()

	// sage-writer (unless a test runs it as its own process).
	if !opt.NoWriter {
		wr, err := s.startProgram(ctx, sagewriter.Program(sagewriter.Config{
			Addr: loopback, Endpoints: s.SageEndpoints(), ClientID: SageClientID, ClientSecret: secrets.String(SageClientSecret),
			// The simulator has no per-business throttle unless a test sets one;
			// Sage's own pacing default (100/min) would only slow the demo.
			Budget:     budget.Config{BusinessPerMinute: DevBusinessPerMinute, BusinessBurst: DevBusinessBurst},
			TenantScan: DevTenantScan,
		}))
		if err != nil {
			return err
		}
		s.WriterURL = wr.URL()
	}

	sc, err := s.startProgram(ctx, statecallback.Program(statecallback.Config{Addr: loopback}))
	if err != nil {
		return err
	}
	s.StateCallbackURL = sc.URL()

	// admin: gRPC for ledgerctl, HTTP for Sage OAuth and the dashboard. Its
	// public URL (the OAuth redirect) must be known before it is built.
	httpLn, err := net.Listen("tcp", loopback)
	if err != nil {
		return fmt.Errorf("admin http: listen: %w", err)
	}
	grpcLn, err := net.Listen("tcp", loopback)
	if err != nil {
		httpLn.Close()
		return fmt.Errorf("admin grpc: listen: %w", err)
	}
	httpURL := "http://" + httpLn.Addr().String()
	acfg := admin.Config{
		GRPCAddr: grpcLn.Addr().String(), HTTPAddr: httpLn.Addr().String(), PublicURL: httpURL,
		HTTPListener: httpLn, GRPCListener: grpcLn,
		AdminToken: secrets.String(s.AdminToken), Env: "dev", LedgerBaseURL: s.IngestURL,
		Sage: s.SageEndpoints(), SageClientID: SageClientID, SageClientSecret: secrets.String(SageClientSecret),
		SageRatePerMinute: DevBusinessPerMinute, // the simulator is not throttled
	}
	if opt.AdminConfig != nil {
		opt.AdminConfig(&acfg)
	}
	ad, err := s.startProgram(ctx, admin.Program(acfg))
	if err != nil {
		return err
	}
	s.AdminHTTPURL, s.AdminGRPCAddr = ad.URL(), grpcLn.Addr().String()
	return nil
}

// loopback asks for a free port on the loopback interface.
const loopback = "127.0.0.1:0"

// startProgram runs prog until Close and waits until it is built.
func (s *Stack) startProgram(ctx context.Context, prog process.Program) (*process.Runner, error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r, err := process.Start(runCtx, s.Log.With("service", prog.Name), s.Settings(), prog)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%s: %w", prog.Name, err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := r.Wait(); err != nil && runCtx.Err() == nil {
			s.report(fmt.Errorf("%s: %w", prog.Name, err))
		}
	}()
	stop := sync.OnceValue(func() error {
		cancel()
		err := r.Wait()
		if err != nil {
			s.Log.Warn("service stopped with an error", "service", prog.Name, "err", err)
		}
		return err
	})
	s.onClose(func() { _ = stop() })
	s.mu.Lock()
	s.stops[prog.Name] = stop
	s.mu.Unlock()
	if err := r.Built(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// StopService stops one of the stack's services as SIGTERM stops its binary
// and waits until it has, returning why it stopped badly (work that did not
// settle within its grace time); tests use it to hand work to another replica.
func (s *Stack) StopService(name string) error {
	s.mu.Lock()
	stop := s.stops[name]
	s.mu.Unlock()
	if stop == nil {
		return fmt.Errorf("no service %q in the stack", name)
	}
	return stop()
}
