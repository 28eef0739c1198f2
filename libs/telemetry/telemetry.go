// Package telemetry is Ledger's one observability bootstrap: JSON slog loggers,
// W3C trace-context propagation (traceparent travels in HTTP and NATS headers),
// and the Prometheus registry behind each service's /metrics.
package telemetry

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Logger returns a JSON logger tagged with the service name, at LEDGER_LOG_LEVEL
// (debug, info, warn, error; default info), writing to w (stderr when nil).
func Logger(service string, w io.Writer) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(os.Getenv("LEDGER_LOG_LEVEL")))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})).With("service", service)
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

var traceparentRE = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// Traceparent returns the request's W3C traceparent continued with a new span id,
// or a new trace when the request has none (or a malformed one).
func Traceparent(incoming string) string {
	incoming = strings.TrimSpace(incoming)
	if traceparentRE.MatchString(incoming) && incoming[3:35] != strings.Repeat("0", 32) {
		return incoming[:36] + randHex(8) + incoming[52:]
	}
	return "00-" + randHex(16) + "-" + randHex(8) + "-01"
}

// TraceID extracts the trace id of a traceparent, for log attributes.
func TraceID(traceparent string) string {
	if len(traceparent) >= 35 {
		return traceparent[3:35]
	}
	return ""
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
