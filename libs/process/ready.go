package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/bus"
)

// readyTimeout bounds one /readyz answer.
const readyTimeout = 3 * time.Second

// serveReady answers /readyz: 200 when every check passes, else 503 with each
// failing check and its reason, one per line. The checks mean the same in
// every service: the database answers and its schema is the version this
// binary expects, NATS is connected and Ledger's streams exist, and then the
// service's own (its consumers running).
func (r *Runner) serveReady(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	st, in, waiting := r.started, r.infra, r.waiting
	r.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if st == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %v\n", waiting)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), readyTimeout)
	defer cancel()
	var failed []string
	for _, c := range append(infraChecks(in), st.Ready...) {
		if err := c.Check(ctx); err != nil {
			failed = append(failed, c.Name+": "+err.Error())
		}
	}
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready:\n%s\n", strings.Join(failed, "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// infraChecks are the readiness checks every service shares.
func infraChecks(in *Infra) []Check {
	if in.Store == nil || in.NC == nil {
		return nil // a standalone program (Program.Connect): its own checks only
	}
	return []Check{
		{Name: "database", Check: in.Store.Ping},
		{Name: "schema", Check: in.Store.SchemaCurrent},
		{Name: "nats", Check: func(context.Context) error {
			if !in.NC.IsConnected() {
				return fmt.Errorf("not connected to %s (%s)", in.Settings.NATSURL, in.NC.Status())
			}
			return nil
		}},
		{Name: "streams", Check: func(ctx context.Context) error {
			var errs []error
			for _, cfg := range bus.Streams(in.Settings.NATSReplicas) {
				if _, err := in.JS.Stream(ctx, cfg.Name); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", cfg.Name, err))
				}
			}
			return errors.Join(errs...)
		}},
	}
}

// Server returns an HTTP server for handler on addr with Ledger's defaults:
// bounded header reads, idle connections closed after a minute, server errors
// logged at WARN. Program.Tune may tighten it further.
func Server(log *slog.Logger, addr string, handler http.Handler) *http.Server {
	return &http.Server{
		Addr: addr, Handler: handler,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
