package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// InstrumentationName names Ledger's own tracer (consumer, producer,
// operator and HTTP client spans); otelhttp (server spans) and otelgrpc name
// theirs.
const InstrumentationName = "github.com/ledgersync/ledger"

// Tracer is Ledger's tracer, from the global provider Setup installed.
func Tracer() trace.Tracer { return otel.Tracer(InstrumentationName) }

// Propagator is the W3C TraceContext + Baggage propagator every hop uses:
// HTTP (HTTPTransport, otelhttp), gRPC (otelgrpc) and NATS headers (NATSCarrier). Ledger's
// wrappers use it whether or not Setup installed it globally.
func Propagator() propagation.TextMapPropagator { return propagator }

var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// ExportConfig is what the standard OTEL_* variables ask of the exporter.
type ExportConfig struct {
	// Exporter is "otlp" or "none": OTEL_TRACES_EXPORTER, else "otlp" when an
	// OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), else "none".
	Exporter string
	// Disabled is OTEL_SDK_DISABLED=true: no SDK at all (no trace ids).
	Disabled bool
}

// ExportConfigFromEnv reads OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER and
// OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL. The exporter itself reads the
// endpoint, headers, timeout, compression and TLS variables; the SDK reads
// OTEL_TRACES_SAMPLER(_ARG), OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
func ExportConfigFromEnv() (ExportConfig, error) {
	var c ExportConfig
	var errs []error
	switch v := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED"))); v {
	case "", "false":
	case "true":
		c.Disabled = true
	default:
		errs = append(errs, fmt.Errorf("OTEL_SDK_DISABLED=%q: use true or false", v))
	}
	endpoint := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	exporters := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")))
	switch exporters {
	case "":
		c.Exporter = "none"
		if endpoint {
			c.Exporter = "otlp"
		}
	case "otlp", "none":
		c.Exporter = exporters
	default:
		errs = append(errs, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: use otlp or none (console, zipkin and several exporters are not built in)", exporters))
	}
	protocol := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if protocol != "" && protocol != "http/protobuf" && c.Exporter == "otlp" {
		errs = append(errs, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: Ledger exports OTLP over HTTP; use http/protobuf and the collector's HTTP port (4318)", protocol))
	}
	return c, errors.Join(errs...)
}

// The process-wide provider. Several services may run in one process (the
// development stack): the first Setup builds the provider, later ones share
// it, and the last shutdown flushes and stops it.
var global struct {
	sync.Mutex
	tp   *sdktrace.TracerProvider
	refs int
}

// Setup is Ledger's one tracing bootstrap; libs/process calls it for every
// service before the service is built. It installs the W3C TraceContext +
// Baggage propagator and a tracer provider, and returns the shutdown that
// flushes and stops what it installed (joining every provider's error).
//
// Tracing is off by default: without OTEL_TRACES_EXPORTER=otlp or an OTLP
// endpoint nothing is exported and spans are not recorded, but they still
// get ids and travel (HTTP, gRPC, NATS headers), so every log line and run
// carries a trace id. With an exporter, spans go to OTLP/HTTP in batches,
// sampled by OTEL_TRACES_SAMPLER (default parentbased_always_on).
//
// When a provider is already installed in this process (a test's in-memory
// exporter, or another service of the same process), Setup keeps it. service
// names the resource unless OTEL_SERVICE_NAME does.
func Setup(ctx context.Context, service string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(Propagator())
	global.Lock()
	defer global.Unlock()
	if global.tp != nil {
		global.refs++
		return release, nil
	}
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		// Installed by the caller (tests), who shuts it down.
		return func(context.Context) error { return nil }, nil
	}
	cfg, err := ExportConfigFromEnv()
	if err != nil {
		return nil, err
	}
	if cfg.Disabled {
		return func(context.Context) error { return nil }, nil
	}
	tp, err := NewProvider(ctx, service, cfg)
	if err != nil {
		return nil, err
	}
	otel.SetTracerProvider(tp)
	global.tp, global.refs = tp, 1
	return release, nil
}

// release drops one reference to the shared provider; the last one flushes
// and stops it, and puts the no-op provider back.
func release(ctx context.Context) error {
	global.Lock()
	defer global.Unlock()
	if global.tp == nil {
		return nil
	}
	if global.refs--; global.refs > 0 {
		return nil
	}
	tp := global.tp
	global.tp = nil
	otel.SetTracerProvider(noop.NewTracerProvider())
	return errors.Join(tp.ForceFlush(ctx), tp.Shutdown(ctx))
}

// NewProvider builds the tracer provider cfg asks for. With no exporter it
// samples nothing (spans keep their ids and are propagated, but record
// nothing: tracing off costs little).
func NewProvider(ctx context.Context, service string, cfg ExportConfig) (*sdktrace.TracerProvider, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	switch cfg.Exporter {
	case "otlp":
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP exporter (OTEL_EXPORTER_OTLP_*): %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	default:
		opts = append(opts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}
