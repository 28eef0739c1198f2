// Package stack starts the whole Ledger pipeline in one process for `make run`,
// `make demo` and the end-to-end tests: infrastructure (embedded NATS with
// JetStream, a throwaway Postgres), the Magento and Sage simulators, and every
// service, each on its own loopback listener, wired exactly as in production
// (the services only meet through NATS, Postgres and HTTP/gRPC).
package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack"
	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/services/admin"
	"github.com/ledgersync/ledger/services/ingest"
	magentosim "github.com/ledgersync/ledger/sim/magento"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// Options configure a stack. The zero value is a good development stack.
type Options struct {
	// StateDir holds NATS's file store; a temporary folder when empty.
	StateDir string
	// Log receives every component's logs; discarded when nil.
	Log *slog.Logger
	// ShopDrainInterval is the simulated Magento cron period (default 1 s; the
	// real module drains every 60 s).
	ShopDrainInterval time.Duration
	// ShopBackoff is the shop's transient retry ladder (default 1 s, 2 s, 4 s …
	// instead of the real 60 s … 24 h).
	ShopBackoff []time.Duration
	// NoWriter leaves the sage-writer out, for tests that run it as a separate
	// process they can kill (see WriterEnv).
	NoWriter bool
	// AdminToken is the operator credential; random when empty.
	AdminToken string
	// External starts no service: the caller runs them as processes (with
	// ServiceEnv) and sets IngestURL, AdminHTTPURL and AdminGRPCAddr.
	External bool
	// NATSURL points the stack at running NATS servers (comma-separated
	// client URLs, as LEDGER_NATS_URL takes them) instead of LEDGER_NATS_URL
	// or an embedded server; StateDir then holds no NATS store.
	NATSURL string
	// NATSReplicas is LEDGER_NATS_REPLICAS of every service: 1 (the default)
	// for a single server, 3 or 5 on a JetStream cluster.
	NATSReplicas int
	// IngestConfig and AdminConfig, when set, adjust the configuration of
	// ingest and admin before they start (tests shorten windows and
	// thresholds, e.g. LEDGER_SHOP_SILENT_AFTER).
	IngestConfig func(*ingest.Config)
	AdminConfig  func(*admin.Config)
}

// Stack is a running pipeline. Close stops everything it started.
type Stack struct {
	Log *slog.Logger

	NATSURL      string
	NATSReplicas int
	DatabaseURL  string
	SecretKey    string // LEDGER_SECRET_KEY of this stack (a random dev key unless set)
	Store        *store.Store
	NC           *nats.Conn
	JS           jetstream.JetStream

	Shop    *magentosim.Shop
	ShopURL string
	Sage    *sagesim.Server
	SageURL string

	IngestURL     string
	AdminHTTPURL  string
	AdminGRPCAddr string
	AdminToken    string
	// Health endpoints of the consumer services (healthz, readyz, metrics).
	MapperURL, WriterURL, StateCallbackURL string

	mu      sync.Mutex
	mariadb *devstack.MariaDB // the relay shops' server, started by the first
	// shopBackoff is the shops' (and their relays') transient retry ladder.
	shopBackoff []time.Duration
	closers     []func()
	stops       map[string]func() error // service name → stop
	wg          sync.WaitGroup
	errs        chan error
}

// SageClient is the OAuth client registered in the Sage simulator by default.
const (
	SageClientID     = "ledger-dev"
	SageClientSecret = "ledger-dev-secret"
)

// Start brings the stack up. On error everything started so far is stopped.
func Start(ctx context.Context, opt Options) (_ *Stack, err error) {
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Stack{Log: log, errs: make(chan error, 16), AdminToken: opt.AdminToken, stops: map[string]func() error{}, NATSReplicas: max(opt.NATSReplicas, 1)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.AdminToken == "" {
		s.AdminToken = randomHex(16)
	}

	// Infrastructure.
	url := opt.NATSURL
	if url == "" {
		natsDir := ""
		if opt.StateDir != "" {
			natsDir = filepath.Join(opt.StateDir, "nats")
			if err := os.MkdirAll(natsDir, 0o755); err != nil {
				return nil, err
			}
		}
		var stop func()
		if url, stop, err = devstack.NATSURL(ctx, natsDir); err != nil {
			return nil, fmt.Errorf("nats: %w", err)
		}
		s.onClose(stop)
	}
	s.NATSURL = url
	dbURL, stopDB, err := devstack.DatabaseURL(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s.onClose(stopDB)
	s.DatabaseURL = dbURL

	var sealer *secrets.Sealer
	if spec := os.Getenv("LEDGER_SECRET_KEY"); spec != "" {
		if sealer, err = secrets.ParseKeyRing(spec); err != nil {
			return nil, err
		}
		s.SecretKey = spec
	} else {
		sealer, s.SecretKey = secrets.NewRandomKeyRing()
	}
	if s.Store, err = store.Open(ctx, dbURL, sealer); err != nil {
		return nil, err
	}
	s.onClose(s.Store.Close)
	if s.NC, err = nats.Connect(url, nats.Name("ledger-dev"), nats.MaxReconnects(-1)); err != nil {
		return nil, fmt.Errorf("nats connect: %w", err)
	}
	s.onClose(s.NC.Close)
	if s.JS, err = jetstream.New(s.NC); err != nil {
		return nil, err
	}
	if err := bus.EnsureStreams(ctx, s.JS, s.NATSReplicas); err != nil {
		return nil, err
	}

	// Simulators.
	s.Sage = sagesim.New(sagesim.Config{})
	if s.SageURL, err = s.serve("sage-sim", s.Sage.Handler()); err != nil {
		return nil, err
	}
	drain := opt.ShopDrainInterval
	if drain <= 0 {
		drain = time.Second
	}
	backoff := opt.ShopBackoff
	if len(backoff) == 0 {
		backoff = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, time.Minute}
	}
	s.shopBackoff = backoff
	s.Shop = magentosim.New(magentosim.Config{DrainInterval: drain, Backoff: backoff, Logger: log.With("component", "magento-sim")})
	if s.ShopURL, err = s.serve("magento-sim", s.Shop.Handler()); err != nil {
		return nil, err
	}
	s.goRun("magento-sim drain", s.Shop.Run)

	if err := s.startServices(ctx, opt); err != nil {
		return nil, err
	}
	return s, nil
}

// SageEndpoints are the simulator's OAuth and API endpoints.
func (s *Stack) SageEndpoints() sage.Endpoints { return sage.At(s.SageURL) }

// WriterEnv is the environment a separately started sage-writer process needs
// to join this stack.
func (s *Stack) WriterEnv() []string {
	return append(s.ServiceEnv("sage-writer"), "WRITER_ADDR=127.0.0.1:0")
}

// ServiceEnv is the environment a separately started service process (ingest,
// mapper, sage-writer, statecallback, admin) needs to join this stack, but
// for its listening address.
func (s *Stack) ServiceEnv(name string) []string {
	env := []string{
		"LEDGER_ENV=dev",
		"LEDGER_DATABASE_URL=" + s.DatabaseURL,
		"LEDGER_NATS_URL=" + s.NATSURL,
		fmt.Sprintf("LEDGER_NATS_REPLICAS=%d", max(s.NATSReplicas, 1)),
		"LEDGER_SECRET_KEY=" + s.SecretKey,
	}
	e := s.SageEndpoints()
	sage := []string{
		"SAGE_AUTH_URL=" + e.AuthURL, "SAGE_TOKEN_URL=" + e.TokenURL, "SAGE_REVOKE_URL=" + e.RevokeURL, "SAGE_API_URL=" + e.APIURL,
		"SAGE_CLIENT_ID=" + SageClientID, "SAGE_CLIENT_SECRET=" + SageClientSecret,
	}
	switch name {
	case "sage-writer":
		env = append(append(env, sage...),
			fmt.Sprintf("SAGE_BUSINESS_RATE_PER_MINUTE=%d", DevBusinessPerMinute),
			fmt.Sprintf("SAGE_BUSINESS_BURST=%d", DevBusinessBurst),
			"WRITER_TENANT_SCAN="+DevTenantScan.String())
	case "admin":
		env = append(append(env, sage...), "ADMIN_TOKEN="+s.AdminToken, "LEDGER_BASE_URL="+s.IngestURL)
	}
	return env
}

// Errors reports components that stopped with an error while running.
func (s *Stack) Errors() <-chan error { return s.errs }

// serve starts an HTTP server for h on a free loopback port.
func (s *Stack) serve(name string, h http.Handler) (string, error) {
	ln, url, err := listen(name)
	if err != nil {
		return "", err
	}
	s.serveOn(name, ln, h)
	return url, nil
}

// listen reserves a free loopback port, so a component can be told its own URL
// before it is built.
func listen(name string) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("%s: listen: %w", name, err)
	}
	return ln, "http://" + ln.Addr().String(), nil
}

// serveOn serves h on ln until Close.
func (s *Stack) serveOn(name string, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.report(fmt.Errorf("%s: %w", name, err))
		}
	}()
	s.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
}

// goRun runs fn until Close; an error return is reported.
func (s *Stack) goRun(name string, fn func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			s.report(fmt.Errorf("%s: %w", name, err))
		}
	}()
	s.onClose(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			s.Log.Warn("component did not stop in time", "component", name)
		}
	})
}

func (s *Stack) report(err error) {
	s.Log.Error("component failed", "err", err)
	select {
	case s.errs <- err:
	default:
	}
}

func (s *Stack) onClose(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closers = append(s.closers, f)
}

// Close stops every component in reverse start order.
func (s *Stack) Close() {
	s.mu.Lock()
	closers := s.closers
	s.closers = nil
	s.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
