// Command magento-sim runs the in-memory Magento 2 shop simulator (Byte8_Client +
// Byte8_SageAccounting) on a local address, for the dev stack and demos. See
// package magentosim for the surface it serves.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	magentosim "github.com/ledgersync/ledger/sim/magento"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(context.Background(), os.Args[1:], log); err != nil {
		log.Error("magento-sim stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, log *slog.Logger) (err error) {
	fs := flag.NewFlagSet("magento-sim", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	drain := fs.Duration("drain-interval", magentosim.DefaultDrainInterval, "outbox drain cron interval")
	backoff := fs.Duration("backoff", 0, "if set, every transient retry waits this long instead of the real 60 s … 24 h ladder")
	seed := fs.Uint64("seed", 1, "seed of the data generator")
	customers := fs.Int("customers", 0, "registered customers to create at start")
	invoices := fs.Int("invoices", 0, "invoices to create at start (before pairing, so no events)")
	guestShare := fs.Float64("guest-share", 0.2, "fraction of seeded invoices placed by guests")
	paidShare := fs.Float64("paid-share", 0.6, "fraction of seeded invoices created paid")
	if err := fs.Parse(args); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := magentosim.Config{DrainInterval: *drain, Logger: log}
	if *backoff > 0 {
		cfg.Backoff = []time.Duration{*backoff}
	}
	shop := magentosim.New(cfg)
	if *customers > 0 || *invoices > 0 {
		res := shop.Seed(rand.New(rand.NewPCG(*seed, *seed)), magentosim.Options{
			Customers: *customers, Invoices: *invoices, GuestShare: *guestShare, PaidShare: *paidShare,
		})
		log.Info("seeded", "customers", len(res.CustomerIDs), "invoices", len(res.InvoiceIDs))
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: shop.Handler(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	cronDone := make(chan struct{})
	go func() {
		defer close(cronDone)
		_ = shop.Run(ctx)
	}()
	log.Info("magento-sim listening", "addr", ln.Addr().String(), "drain_interval", drain.String())

	select {
	case <-ctx.Done():
	case err = <-serveErr:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		stop()
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = fmt.Errorf("shutdown: %w", serr)
	}
	<-cronDone
	log.Info("magento-sim stopped")
	return err
}
