// Command sage-sim serves the Sage Business Cloud Accounting v3.1 simulator
// (package sagesim) on a local address, for make run, demos and manual testing.
//
//	sage-sim -addr 127.0.0.1:8082 -seed 1 [-latency 50ms -latency-jitter 100ms]
//	         [-server-error-rate 0.01] [-rate-limit-per-minute 100] [-retry-after] [-lax-schema]
//
// Every quirk is on, and so is strict mode (POST/PUT bodies are checked
// against Sage's published request schema; -lax-schema turns it off). Faults,
// quirks and strict mode can be changed while it runs through PUT
// /__sim/faults, /__sim/quirks and /__sim/schema (see sim/sage/README.md).
//
// Point Ledger's Sage OAuth base at http://ADDR (/oauth2/auth/central, /token,
// /revoke) and its API base at http://ADDR/v3.1. The default OAuth client is
// ledger-dev / ledger-dev-secret.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	sagesim "github.com/ledgersync/ledger/sim/sage"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(context.Background(), os.Args[1:], log); err != nil {
		log.Error("sage-sim stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, log *slog.Logger) (err error) {
	fs := flag.NewFlagSet("sage-sim", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8082", "listen address")
	seed := fs.Uint64("seed", 1, "seed for generated ids and fault draws")
	var faults sagesim.Faults
	fs.DurationVar(&faults.Latency, "latency", 0, "fixed latency added to every /v3.1 request")
	fs.DurationVar(&faults.LatencyJitter, "latency-jitter", 0, "uniform random latency in [0, jitter) on top of -latency")
	fs.Float64Var(&faults.ServerErrorRate, "server-error-rate", 0, "probability (0..1) of a 500 UnexpectedError")
	fs.IntVar(&faults.RateLimitPerMinute, "rate-limit-per-minute", 0, "requests per business per minute (0: unlimited)")
	fs.BoolVar(&faults.RetryAfter, "retry-after", false, "send Retry-After on 429")
	lax := fs.Bool("lax-schema", false, "accept POST/PUT bodies that break Sage's published request schema (strict by default)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	sim := sagesim.New(sagesim.Config{Seed: *seed, LaxSchema: *lax})
	if err := sim.SetFaults(faults); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("sage-sim listening",
		"addr", ln.Addr().String(), "api_base", "http://"+ln.Addr().String()+"/v3.1",
		"client_id", sagesim.DefaultClientID, "lead_business", sim.LeadBusinessID(), "seed", *seed)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("sage-sim stopped")
	return nil
}
