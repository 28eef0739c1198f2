package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EnvNATSURL names the environment variable that points Ledger at an existing
// NATS server instead of an embedded one.
const EnvNATSURL = "LEDGER_NATS_URL"

// natsReadyTimeout bounds how long StartNATS waits for the server to accept
// client connections.
const natsReadyTimeout = 10 * time.Second

// natsStorePrefix names the store directories StartNATS creates itself.
const natsStorePrefix = "store-"

// NATSOption adjusts the embedded NATS server started by StartNATS.
type NATSOption func(*natsConfig)

type natsConfig struct {
	logger     *slog.Logger
	port       int
	syncAlways bool
}

// WithSyncAlways makes JetStream fsync every write before acknowledging it,
// as production runs it (deploy/nats/nats.conf: sync_interval: always).
// JetStream's default flushes every two minutes, so an acknowledged message
// can be lost in a power cut; tests that do not need that durability leave it
// off for speed.
func WithSyncAlways() NATSOption {
	return func(c *natsConfig) { c.syncAlways = true }
}

// WithNATSLogger sends the server's log lines to logger. Without it the
// embedded server logs nothing. Debug and trace lines are not enabled.
func WithNATSLogger(logger *slog.Logger) NATSOption {
	return func(c *natsConfig) { c.logger = logger }
}

// WithNATSPort makes the server listen on port instead of a random free one.
// It exists so a test can restart a server on the same address and store
// directory to check that clients and streams survive a restart.
func WithNATSPort(port int) NATSOption {
	return func(c *natsConfig) { c.port = port }
}

// StartNATS starts an in-process NATS server with JetStream enabled, listening
// on 127.0.0.1 on a random free port, and waits until it accepts client
// connections. JetStream stores its files under dir; when dir is "" a
// temporary directory is created under $TMPDIR/ledger-nats-<euid> and
// removed once the server shuts down (a dir given by the caller is never
// removed).
//
// The caller owns the server: call Shutdown and then WaitForShutdown.
// Clients connect to s.ClientURL().
func StartNATS(dir string, opts ...NATSOption) (*server.Server, error) {
	cfg := natsConfig{port: server.RANDOM_PORT}
	for _, o := range opts {
		o(&cfg)
	}

	ownDir := dir == ""
	if ownDir {
		tmp, err := natsTempDir()
		if err != nil {
			return nil, fmt.Errorf("devstack: nats store directory: %w", err)
		}
		dir = tmp
	}
	cleanup := func() {
		if ownDir {
			_ = os.RemoveAll(dir)
		}
	}

	s, err := server.NewServer(&server.Options{
		Host:       "127.0.0.1",
		Port:       cfg.port,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: cfg.syncAlways,
		// The embedded server must not install its own signal handlers: the
		// host process decides what SIGINT/SIGTERM mean.
		NoSigs:                 true,
		NoLog:                  cfg.logger == nil,
		DisableJetStreamBanner: true,
	})
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("devstack: configure nats server: %w", err)
	}
	if cfg.logger != nil {
		s.SetLoggerV2(slogNATSLogger{cfg.logger}, false, false, false)
	}

	go s.Start()
	if !s.ReadyForConnections(natsReadyTimeout) {
		s.Shutdown()
		s.WaitForShutdown()
		cleanup()
		return nil, fmt.Errorf("devstack: nats server (store %s) not ready for connections after %s", dir, natsReadyTimeout)
	}
	if ownDir {
		// The server has no shutdown hook; this goroutine ends when the
		// server does. Should the process exit first, the next StartNATS
		// removes the directory.
		go func() {
			s.WaitForShutdown()
			cleanup()
		}()
	}
	return s, nil
}

// natsTempDir creates a store directory under $TMPDIR/ledger-nats-<euid>,
// first removing those left there by processes that have exited.
func natsTempDir() (string, error) {
	parent := filepath.Join(os.TempDir(), "ledger-nats-"+strconv.Itoa(os.Geteuid()))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", err
	}
	removeStaleDirs(parent, natsStorePrefix, slog.New(slog.DiscardHandler))
	dir, err := os.MkdirTemp(parent, natsStorePrefix)
	if err != nil {
		return "", err
	}
	if err := writeOwner(dir); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// NATSURL returns the URL of the NATS server Ledger should use: the value of
// LEDGER_NATS_URL when set (stop is then a no-op), else the client URL of an
// embedded JetStream server started with StartNATS(dir) and durable as in
// production (WithSyncAlways); stop shuts it down and waits until it has.
func NATSURL(ctx context.Context, dir string) (url string, stop func(), err error) {
	if u := os.Getenv(EnvNATSURL); u != "" {
		return u, func() {}, nil
	}
	if err := ctx.Err(); err != nil {
		return "", func() {}, err
	}
	s, err := StartNATS(dir, WithSyncAlways())
	if err != nil {
		return "", func() {}, err
	}
	// Ledger's services stop before the server: give their connections a
	// moment to close.
	return s.ClientURL(), func() { StopNATS(s, 2*time.Second) }, nil
}

// slogNATSLogger adapts slog to server.Logger. The server hands over
// printf-style messages, so they are formatted once here.
type slogNATSLogger struct{ l *slog.Logger }

func (n slogNATSLogger) Noticef(format string, v ...any) { n.l.Info(fmt.Sprintf(format, v...)) }
func (n slogNATSLogger) Warnf(format string, v ...any)   { n.l.Warn(fmt.Sprintf(format, v...)) }
func (n slogNATSLogger) Errorf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n slogNATSLogger) Debugf(format string, v ...any)  { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n slogNATSLogger) Tracef(format string, v ...any)  { n.l.Debug(fmt.Sprintf(format, v...)) }

// Fatalf is only called by the server for unrecoverable start-up problems; it
// logs instead of exiting so the host process decides what to do.
func (n slogNATSLogger) Fatalf(format string, v ...any) { n.l.Error(fmt.Sprintf(format, v...)) }

var _ server.Logger = slogNATSLogger{}
