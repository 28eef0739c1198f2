package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ledgersync/ledger/libs/backoff"
	"github.com/ledgersync/ledger/libs/telemetry"
)

// Program is one Ledger service as the runtime runs it. Each service package
// builds its Program from its configuration; its main runs it with Main and
// cmd/ledger-dev with Start.
type Program struct {
	// Name is the service's name: its NATS connection name and log field.
	Name string
	// Addr is where /healthz, /readyz, /metrics and the service's HTTP API are
	// served; AddrVar is the setting it came from (for error messages).
	Addr, AddrVar string
	// Listener, when set, is served instead of listening on Addr (a caller
	// that must know the port before the service is built).
	Listener net.Listener
	// Config is logged at start; it must redact its secrets.
	Config slog.LogValuer
	// Tune adjusts the HTTP server (timeouts) before it serves.
	Tune func(*http.Server)
	// HTTPDrain is how long HTTP requests in flight may finish on shutdown
	// (default 5 s).
	HTTPDrain time.Duration
	// Connect, when set, replaces the runtime's connection to Ledger's
	// infrastructure (Postgres, NATS with Ledger's streams): a service that
	// runs outside it (the outbox relay, next to a shop) dials what it needs
	// itself and returns an Infra with neither Store nor NC, so /readyz is
	// its own checks only. It is retried with back-off like Connect; such a
	// program runs with StandaloneSettingsFromEnv (no Ledger database or key).
	Connect func(ctx context.Context, s Settings) (*Infra, error)
	// Start builds the service once Postgres and NATS answer. An error stops
	// the process.
	Start func(ctx context.Context, in *Infra) (Started, error)
}

// Started is a built service.
type Started struct {
	// Handler serves every path but /healthz and /readyz, which the runtime
	// owns.
	Handler http.Handler
	// Components run until their context ends.
	Components []Component
	// Ready are the service's own readiness checks, on top of the runtime's
	// (database, schema version, NATS, streams).
	Ready []Check
	// Stop, when set, runs once every component has stopped.
	Stop func()
}

// Component is one long-running part of a service: a consumer, a gRPC server.
type Component struct {
	Name string
	// Run blocks until its context ends; returning earlier is a failure that
	// stops the process.
	Run func(ctx context.Context) error
	// Shutdown is how long Run may take to return once its context ends
	// (default 10 s): the process waits for the longest.
	Shutdown time.Duration
}

// Check is one readiness condition.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// defaultShutdown is a component's shutdown time when it names none.
const defaultShutdown = 10 * time.Second

// connectRetry paces the wait for Postgres and NATS at start.
var connectRetry = backoff.Policy{Base: 500 * time.Millisecond, Cap: 15 * time.Second, Jitter: 0.2}

// Main runs a service binary: it reads the common settings and the service's
// own (load), logs them, runs the Program until SIGINT or SIGTERM, and exits
// non-zero when start-up or the run failed.
func Main(name string, load func() (Program, error)) {
	log := telemetry.Logger(name, nil)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	prog, perr := load()
	settings, serr := SettingsFromEnv()
	if perr == nil && prog.Connect != nil {
		settings, serr = StandaloneSettingsFromEnv()
	}
	if err := errors.Join(serr, perr); err != nil {
		log.Error(name+" cannot start: configuration", "err", fmt.Errorf("\n%w", err))
		stop()
		os.Exit(2)
	}
	if err := Run(ctx, log, settings, prog); err != nil {
		log.Error(name+" stopped", "err", err)
		stop()
		os.Exit(1)
	}
}

// Run runs prog until ctx ends or it fails.
func Run(ctx context.Context, log *slog.Logger, s Settings, prog Program) error {
	r, err := Start(ctx, log, s, prog)
	if err != nil {
		return err
	}
	return r.Wait()
}

// Runner is a Program running in the background.
type Runner struct {
	prog Program
	log  *slog.Logger
	addr string
	// pprof serves /debug/pprof/ (Settings.Pprof).
	pprof bool

	mu      sync.Mutex
	waiting error    // why the service is not built yet
	started *Started // nil until built
	infra   *Infra

	built chan struct{} // closed once started is set
	done  chan struct{}
	err   error
}

// Start listens on prog.Addr (or prog.Listener) and runs prog in the
// background: /healthz and /readyz answer at once, the service is built when
// Postgres and NATS answer. Wait returns when ctx ends and everything stopped.
//
// Tracing is set up here for every service (telemetry.Setup, configured by
// the OTEL_* variables): the service's HTTP handler is served in server spans,
// log lines written with a context carry its trace id, and the tracer
// provider is flushed and released once everything else has stopped.
func Start(ctx context.Context, log *slog.Logger, s Settings, prog Program) (_ *Runner, err error) {
	if log == nil {
		log = telemetry.Discard()
	}
	log = telemetry.WithTrace(log)
	shutdownTracing, err := telemetry.Setup(ctx, prog.Name)
	if err != nil {
		return nil, fmt.Errorf("tracing (OTEL_* variables): %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, stopTracing(shutdownTracing))
		}
	}()
	ln := prog.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", prog.Addr); err != nil {
			return nil, fmt.Errorf("%s %s: %w", prog.AddrVar, prog.Addr, err)
		}
	}
	r := &Runner{prog: prog, log: log, addr: ln.Addr().String(), pprof: s.Pprof, built: make(chan struct{}), done: make(chan struct{}),
		waiting: errors.New("starting")}
	srv := Server(log, prog.Addr, r)
	if prog.Tune != nil {
		prog.Tune(srv)
	}
	go func() {
		defer close(r.done)
		err := r.run(ctx, s, srv, ln)
		// Last, so the spans of the shutdown itself are exported.
		r.err = errors.Join(err, stopTracing(shutdownTracing))
	}()
	return r, nil
}

// stopTracing flushes and releases the tracer provider within a bound: an
// unreachable collector must not hold a stopping service.
func stopTracing(shutdown func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		return fmt.Errorf("tracing shutdown: %w", err)
	}
	return nil
}

// Addr is the address the runner serves HTTP on.
func (r *Runner) Addr() string { return r.addr }

// URL is http://Addr.
func (r *Runner) URL() string { return "http://" + r.addr }

// Wait blocks until the runner has stopped and returns why.
func (r *Runner) Wait() error {
	<-r.done
	return r.err
}

// Built blocks until the service is built (its dependencies answered) or the
// runner stopped.
func (r *Runner) Built(ctx context.Context) error {
	select {
	case <-r.built:
		return nil
	case <-r.done:
		if r.err != nil {
			return r.err
		}
		return errors.New(r.prog.Name + " stopped before it was built")
	case <-ctx.Done():
		return fmt.Errorf("%s not built: %w (%v)", r.prog.Name, ctx.Err(), r.notReady())
	}
}

func (r *Runner) notReady() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waiting
}

func (r *Runner) run(ctx context.Context, s Settings, srv *http.Server, ln net.Listener) (err error) {
	failed := make(chan error, 1)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("http server: %w", err)
		}
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), cmp(r.prog.HTTPDrain, 5*time.Second))
		defer cancel()
		err = errors.Join(err, srv.Shutdown(sctx))
	}()
	r.log.Info("starting", "addr", r.addr, "settings", s, "config", r.prog.Config)

	in, err := r.connect(ctx, s)
	if err != nil || in == nil {
		return err // nil: stopped while waiting
	}
	defer in.Close()
	in.Log = r.log
	st, err := r.prog.Start(ctx, in)
	if err != nil {
		return fmt.Errorf("%s: %w", r.prog.Name, err)
	}
	if st.Handler != nil {
		// Every request to the service's own routes is a server span (a
		// webhook continues the shop's trace when it sends traceparent).
		st.Handler = telemetry.HTTPHandler(st.Handler, r.prog.Name)
	}
	if st.Stop != nil {
		defer st.Stop()
	}
	r.mu.Lock()
	r.started, r.infra, r.waiting = &st, in, nil
	r.mu.Unlock()
	close(r.built)
	r.log.Info("started", "components", len(st.Components))
	return runComponents(ctx, r.log, failed, st.Components)
}

// connect waits for Postgres and NATS with back-off, saying why once per step.
func (r *Runner) connect(ctx context.Context, s Settings) (*Infra, error) {
	for attempt := uint64(1); ; attempt++ {
		connect := func() (*Infra, error) { return Connect(ctx, r.prog.Name, s) }
		if r.prog.Connect != nil {
			connect = func() (*Infra, error) { return r.prog.Connect(ctx, s) }
		}
		in, err := connect()
		if err == nil {
			return in, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		if IsFatal(err) {
			return nil, err
		}
		r.mu.Lock()
		r.waiting = err
		r.mu.Unlock()
		delay := connectRetry.Delay(attempt)
		r.log.Warn("not ready: waiting for dependencies", "err", err, "attempt", attempt, "retry_in", delay.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(delay):
		}
	}
}

// runComponents runs comps until ctx ends or one fails, then stops them all
// and waits for the longest shutdown time.
func runComponents(ctx context.Context, log *slog.Logger, failed chan error, comps []Component) (err error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	grace := time.Duration(0)
	for _, c := range comps {
		grace = max(grace, cmp(c.Shutdown, defaultShutdown))
		wg.Go(func() {
			err := c.Run(runCtx)
			if runCtx.Err() != nil {
				return
			}
			if err == nil {
				err = errors.New("stopped unexpectedly")
			}
			select {
			case failed <- fmt.Errorf("%s: %w", c.Name, err):
			default:
			}
		})
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down", "grace", grace.String())
	case err = <-failed:
		log.Error("a component failed; shutting down", "err", err)
	}
	cancel()
	if len(comps) == 0 {
		return err
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(grace):
		err = errors.Join(err, fmt.Errorf("components did not stop within %s; what they held returns after its ack wait", grace))
	}
	return err
}

func cmp(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// ServeHTTP serves /healthz and /readyz, and the service's handler once built.
func (r *Runner) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case "/healthz":
		_, _ = w.Write([]byte("ok\n"))
		return
	case "/readyz":
		r.serveReady(w, req)
		return
	}
	if r.pprof && strings.HasPrefix(req.URL.Path, "/debug/pprof/") {
		servePprof(w, req)
		return
	}
	r.mu.Lock()
	st, waiting := r.started, r.waiting
	r.mu.Unlock()
	if st == nil || st.Handler == nil {
		if st == nil {
			w.Header().Set("Retry-After", "5")
			http.Error(w, fmt.Sprintf("%s is starting: %v", r.prog.Name, waiting), http.StatusServiceUnavailable)
			return
		}
		http.NotFound(w, req)
		return
	}
	st.Handler.ServeHTTP(w, req)
}

// Consumer is a service whose work is one long-running consumer: the mapper,
// the writer, statecallback.
type Consumer interface {
	// Handler serves the service's own routes (/metrics).
	Handler() http.Handler
	// Run consumes until its context ends.
	Run(ctx context.Context) error
	// Consuming is its readiness: nil once it consumes.
	Consuming(ctx context.Context) error
	// ShutdownTime is how long Run may take to return once its context ends.
	ShutdownTime() time.Duration
}

// ConsumerProgram completes p (name, address, configuration) for a Consumer
// that build makes once Postgres and NATS answer.
func ConsumerProgram[C Consumer](p Program, build func(in *Infra) (C, error)) Program {
	p.Start = func(_ context.Context, in *Infra) (Started, error) {
		c, err := build(in)
		if err != nil {
			return Started{}, err
		}
		return Started{
			Handler:    c.Handler(),
			Components: []Component{{Name: p.Name, Run: c.Run, Shutdown: c.ShutdownTime()}},
			Ready:      []Check{{Name: "consumer", Check: c.Consuming}},
		}, nil
	}
	return p
}
