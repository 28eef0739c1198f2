// Package telemetry is Ledger's one observability bootstrap: OpenTelemetry
// tracing (Setup, called by libs/process for every service: W3C TraceContext
// and Baggage propagation, OTLP export configured by the standard OTEL_*
// variables, off by default), the carriers and wrappers every hop uses (NATS
// headers, HTTP client spans of its own, otelhttp for servers, otelgrpc),
// JSON slog loggers whose lines carry the trace id, and the Prometheus
// registry behind each service's /metrics.
//
// docs/observability.md describes the span tree of one event, the attributes
// and the links of retries and replays.
package telemetry

import (
	"io"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Logger returns a JSON logger tagged with the service name, at LEDGER_LOG_LEVEL
// (debug, info, warn, error; default info), writing to w (stderr when nil).
// Lines logged with a context that carries a span get trace_id and span_id.
func Logger(service string, w io.Writer) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(os.Getenv("LEDGER_LOG_LEVEL")))
	return slog.New(TraceHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl}))).With("service", service)
}

// Discard is a logger that drops everything (tests).
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// NewRegistry returns a Prometheus registry with Go and process collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// MetricsHandler serves a registry in the Prometheus text format.
func MetricsHandler(r *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(r, promhttp.HandlerOpts{Registry: r})
}
