package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack"
	"github.com/ledgersync/ledger/libs/telemetry"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

const usage = `usage: ledger-dev run|demo [flags]

  run    start the whole pipeline with a paired demo shop and serve until Ctrl-C
  demo   start it, drain a demo outbox, print one summary line and exit
         (0 only when nothing was lost or duplicated)

flags:
  -invoices N    demo invoices to raise (default 60)
  -customers N   demo customers (default 20)
  -timeout D     demo: how long to wait for the outbox to settle (default 5m)
  -state DIR     where NATS keeps its store (default .ledger/)
  -relay         also run a second demo shop connected through the outbox relay
                 (its outbox in a throwaway MariaDB; default true, skipped with a
                 note when mariadb-server is not installed)
  -v             log every component to stderr (run always logs to .ledger/ledger.log)
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprint(os.Stderr, usage)
			fmt.Fprintln(os.Stderr, "\nerror:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "ledger-dev:", err)
		os.Exit(1)
	}
}

type usageError struct{ error }

type flags struct {
	invoices, customers int
	timeout             time.Duration
	state               string
	verbose             bool
	relay               bool
}

func parse(args []string) (string, flags, error) {
	f := flags{invoices: 60, customers: 20, timeout: 5 * time.Minute, state: ".ledger", relay: true}
	if len(args) == 0 {
		return "", f, usageError{errors.New("a command is required: run or demo")}
	}
	cmd := args[0]
	if cmd != "run" && cmd != "demo" {
		return "", f, usageError{fmt.Errorf("unknown command %q: use run or demo", cmd)}
	}
	fs := newFlagSet(&f)
	if err := fs.Parse(args[1:]); err != nil {
		return "", f, usageError{err}
	}
	switch {
	case f.invoices < 1 || f.invoices > 100000:
		return "", f, usageError{fmt.Errorf("-invoices %d: use 1 to 100000", f.invoices)}
	case f.customers < 1 || f.customers > 100000:
		return "", f, usageError{fmt.Errorf("-customers %d: use 1 to 100000", f.customers)}
	case f.timeout <= 0:
		return "", f, usageError{fmt.Errorf("-timeout %s: use a positive duration such as 5m", f.timeout)}
	}
	return cmd, f, nil
}

func run(args []string, stdout, stderr io.Writer) (err error) {
	cmd, f, err := parse(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := os.MkdirAll(f.state, 0o755); err != nil {
		return err
	}
	var logw io.Writer = stderr
	if !f.verbose {
		lf, err := os.Create(filepath.Join(f.state, "ledger.log"))
		if err != nil {
			return err
		}
		defer lf.Close()
		logw = lf
	}
	// No service attribute here: each component adds its own.
	log := slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: logLevel()}))

	// A fresh NATS store each time: the demo's outbox starts empty.
	natsDir, err := os.MkdirTemp(f.state, "nats-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(natsDir)

	// One tracer provider for the whole process, named ledger-dev (the
	// services share it; OTEL_* variables turn export on as for a service).
	shutdownTracing, err := telemetry.Setup(ctx, "ledger-dev")
	if err != nil {
		return fmt.Errorf("tracing (OTEL_* variables): %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = errors.Join(err, shutdownTracing(sctx))
	}()

	fmt.Fprintln(stdout, "ledger-dev: starting NATS, Postgres, simulators and services…")
	st, err := stack.Start(ctx, stack.Options{StateDir: natsDir, Log: log})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Onboard(ctx, "demo", "Demo shop"); err != nil {
		return fmt.Errorf("onboarding the demo shop: %w", err)
	}
	opts := magentosim.Options{Customers: f.customers, Invoices: f.invoices, GuestShare: 0.3}
	seed := st.Shop.Seed(rand.New(rand.NewPCG(42, 7)), opts)
	expected := stack.ExpectSeed(seed)
	printWhere(stdout, st, len(seed.InvoiceIDs), len(seed.CustomerIDs), filepath.Join(f.state, "ledger.log"), f.verbose)

	// The second demo shop: no cron, no inbound call; the relay between its
	// MariaDB and NATS carries everything (docs/relay.md).
	var rs *stack.RelayShop
	var rexpected []stack.Expected
	if f.relay {
		if err := devstack.HaveMariaDB(); err != nil {
			fmt.Fprintf(stdout, "ledger-dev: no relay-connected demo shop (-relay=false to silence this): %v\n", err)
		} else {
			if rs, err = st.StartRelayShop(ctx, relayTenant, "Demo shop behind a relay", relayTenant+"-owner"); err != nil {
				return fmt.Errorf("the relay-connected demo shop: %w", err)
			}
			rseed := rs.Shop.Seed(rand.New(rand.NewPCG(43, 7)), opts)
			rexpected = stack.ExpectSeed(rseed)
			printRelayShop(stdout, rs, len(rseed.InvoiceIDs), len(rseed.CustomerIDs))
		}
	}

	if cmd == "demo" {
		wctx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		sum := st.WaitSettled(wctx, expected)
		fmt.Fprintln(stdout, sum)
		if !sum.OK() {
			return fmt.Errorf("demo did not settle cleanly (mismatched=%d, undelivered outbox rows=%d); see %s",
				sum.Mismatched, sum.Pending, filepath.Join(f.state, "ledger.log"))
		}
		if rs != nil {
			rsum := waitRelayShop(wctx, st, rs, rexpected)
			fmt.Fprintln(stdout, "relay", rsum)
			if !rsum.OK() {
				return fmt.Errorf("the relay demo did not settle cleanly (mismatched=%d, undelivered outbox rows=%d); see %s",
					rsum.Mismatched, rsum.Pending, filepath.Join(f.state, "ledger.log"))
			}
		}
		return nil
	}

	go func() {
		sum := st.WaitSettled(ctx, expected)
		if ctx.Err() == nil {
			fmt.Fprintln(stdout, sum)
		}
		if rs != nil {
			if rsum := waitRelayShop(ctx, st, rs, rexpected); ctx.Err() == nil {
				fmt.Fprintln(stdout, "relay", rsum)
			}
		}
	}()
	fmt.Fprintln(stdout, "ledger-dev: serving; press Ctrl-C to stop")
	select {
	case <-ctx.Done():
	case err := <-st.Errors():
		return err
	}
	fmt.Fprintln(stdout, "ledger-dev: stopping")
	return nil
}

func printWhere(w io.Writer, st *stack.Stack, invoices, customers int, logPath string, verbose bool) {
	fmt.Fprintf(w, `ledger-dev: demo tenant "demo" paired with the Magento simulator and connected to the Sage simulator
  ingest (webhooks)        %s/webhooks/magento/demo/{event}
  operator console         %s/dashboard?token=%s
  admin gRPC (ledgerctl)   %s   (LEDGER_ADMIN_TOKEN=%s)
  mapper health            %s/healthz
  sage-writer health       %s/healthz
  statecallback health     %s/healthz
  magento simulator        %s   (inspect: %s/__sim/status)
  sage simulator           %s   (inspect: %s/__sim/calls)
  nats                     %s
  postgres                 %s
  demo outbox              %d invoices, %d customers raised
`, st.IngestURL, st.AdminHTTPURL, st.AdminToken, st.AdminGRPCAddr, st.AdminToken,
		st.MapperURL, st.WriterURL, st.StateCallbackURL,
		st.ShopURL, st.ShopURL, st.SageURL, st.SageURL, st.NATSURL, st.DatabaseURL, invoices, customers)
	if !verbose {
		fmt.Fprintf(w, "  logs                     %s\n", logPath)
	}
}

// relayTenant is the relay-connected demo shop's tenant.
const relayTenant = "demo-relay"

func printRelayShop(w io.Writer, rs *stack.RelayShop, invoices, customers int) {
	fmt.Fprintf(w, `ledger-dev: demo tenant %q: a shop behind the outbox relay (sync state back over NATS)
  relay health             %s/healthz   (metrics: %s/metrics)
  its magento simulator    %s
  its MariaDB              %s
                           (byte8_event_outbox, byte8_entity_sync_state)
  relay demo outbox        %d invoices, %d customers raised
`, rs.TenantID, rs.RelayURL, rs.RelayURL, rs.ShopURL, rs.DSN, invoices, customers)
}

// waitRelayShop polls the relay shop until its outbox is drained and every
// expected entity has a terminal state in its MariaDB, or ctx ends.
func waitRelayShop(ctx context.Context, st *stack.Stack, rs *stack.RelayShop, expected []stack.Expected) stack.Summary {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		sum := rs.Check(ctx, st, expected)
		if sum.Pending == 0 && sum.Synced+sum.Skipped+sum.Failed == len(expected) {
			return sum
		}
		select {
		case <-ctx.Done():
			return sum
		case <-tick.C:
		}
	}
}

// logLevel reads LEDGER_LOG_LEVEL like the services do (default info).
func logLevel() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(os.Getenv("LEDGER_LOG_LEVEL")))
	return l
}
