package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ledgersync/ledger/libs/telemetry"
)

// clearOTEL unsets the variables Setup reads, for the test's duration.
func clearOTEL(t *testing.T) {
	for _, v := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
		"OTEL_TRACES_SAMPLER", "OTEL_SERVICE_NAME"} {
		t.Setenv(v, "")
	}
}

// Off by default: nothing is exported or recorded, but spans have ids, so
// logs and runs carry a trace id.
func TestSetupIsOffByDefaultButSpansHaveIDs(t *testing.T) {
	clearOTEL(t)
	shutdown, err := telemetry.Setup(t.Context(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	// A second service of the same process shares the provider.
	second, err := telemetry.Setup(t.Context(), "second")
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := telemetry.Tracer().Start(t.Context(), "work")
	defer span.End()
	if !span.SpanContext().IsValid() || span.IsRecording() {
		t.Fatalf("span %v recording=%v: want valid ids and no recording", span.SpanContext(), span.IsRecording())
	}
	if telemetry.TraceID(ctx) == "" || !strings.HasPrefix(telemetry.Traceparent(ctx), "00-"+telemetry.TraceID(ctx)) {
		t.Fatalf("trace id %q, traceparent %q", telemetry.TraceID(ctx), telemetry.Traceparent(ctx))
	}
	if err := second(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, s := telemetry.Tracer().Start(t.Context(), "still"); !s.SpanContext().IsValid() {
		t.Fatal("the first service's provider went away with the second's shutdown")
	}
}

// With an OTLP endpoint, spans are exported over OTLP/HTTP, flushed by the
// shutdown.
func TestSetupExportsOverOTLPWhenAnEndpointIsSet(t *testing.T) {
	clearOTEL(t)
	var posts atomic.Int64
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && len(body) > 0 &&
			r.Header.Get("Content-Type") == "application/x-protobuf" {
			posts.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	shutdown, err := telemetry.Setup(t.Context(), "test")
	if err != nil {
		t.Fatal(err)
	}
	_, span := telemetry.Tracer().Start(t.Context(), "exported")
	if !span.IsRecording() {
		t.Fatal("with an exporter the span is not recorded")
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("the collector received no OTLP export")
	}
}

func TestSetupRefusesWhatItCannotDo(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"OTEL_TRACES_EXPORTER", "console", "use otlp or none"},
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "http/protobuf"},
		{"OTEL_SDK_DISABLED", "maybe", "true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearOTEL(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
			t.Setenv(tc.name, tc.value)
			if _, err := telemetry.ExportConfigFromEnv(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s=%s: %v", tc.name, tc.value, err)
			}
		})
	}
}

// recorder is a provider with an in-memory exporter, not installed globally:
// spans started under its spans use it.
func recorder(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, exp
}

func TestNATSCarrierCarriesTheTraceContext(t *testing.T) {
	tp, _ := recorder(t)
	ctx, span := tp.Tracer("test").Start(t.Context(), "publish")
	defer span.End()
	h := nats.Header{}
	telemetry.Inject(ctx, h)
	if h.Get("traceparent") == "" {
		t.Fatalf("no traceparent header in %v", h)
	}
	got := trace.SpanContextFromContext(telemetry.Extract(context.Background(), h))
	if got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() || !got.IsRemote() {
		t.Fatalf("extracted %v from %v", got, span.SpanContext())
	}
	if sc := telemetry.ParseTraceparent(h.Get("traceparent")); !sc.Equal(got) {
		t.Fatalf("ParseTraceparent %v, want %v", sc, got)
	}
	if sc := telemetry.SpanContextFromIDs(got.TraceID().String(), got.SpanID().String()); sc.TraceID() != got.TraceID() || sc.SpanID() != got.SpanID() {
		t.Fatalf("SpanContextFromIDs %v", sc)
	}
}

func TestLogLinesCarryTheTraceID(t *testing.T) {
	tp, _ := recorder(t)
	var buf bytes.Buffer
	log := telemetry.WithTrace(slog.New(slog.NewJSONHandler(&buf, nil))).With("service", "test")
	ctx, span := tp.Tracer("test").Start(t.Context(), "work")
	log.InfoContext(ctx, "with a span")
	span.End()
	log.Info("without")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var with, without map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &with)
	_ = json.Unmarshal([]byte(lines[1]), &without)
	if with["trace_id"] != span.SpanContext().TraceID().String() || with["span_id"] != span.SpanContext().SpanID().String() {
		t.Fatalf("line %s lacks the span's ids", lines[0])
	}
	if _, ok := without["trace_id"]; ok {
		t.Fatalf("line without a span has a trace id: %s", lines[1])
	}
}

func TestHTTPTransportMakesClientSpansWithoutSecrets(t *testing.T) {
	tp, exp := recorder(t)
	var gotTraceparent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotTraceparent = r.Header.Get("traceparent")
		if strings.HasSuffix(r.URL.Path, "/broken") {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	hc := telemetry.HTTPClient(srv.Client())
	ctx, parent := tp.Tracer("test").Start(t.Context(), "writer process")
	ctx = telemetry.WithPeer(ctx, telemetry.PeerSage)
	for _, path := range []string{"/v3.1/contacts/0f9c2d7e6b5a4c3d2e1f0a9b8c7d6e5f?search=jane%40example.com", "/v3.1/sales_invoices/broken"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer secret-token")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	parent.End()
	if !strings.Contains(gotTraceparent, parent.SpanContext().TraceID().String()) {
		t.Fatalf("traceparent %q does not continue the trace", gotTraceparent)
	}
	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans", len(spans))
	}
	contacts, broken := spans[0], spans[1]
	if contacts.Name != "sage GET /v3.1/contacts/{id}" || contacts.SpanKind != trace.SpanKindClient || contacts.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("span %q kind %v parent %v", contacts.Name, contacts.SpanKind, contacts.Parent)
	}
	attrs := map[string]string{}
	for _, kv := range contacts.Attributes {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["ledger.sage.resource"] != "contacts" || attrs["http.response.status_code"] != "200" ||
		strings.Contains(attrs["url.full"], "search") || attrs["url.full"] == "" {
		t.Fatalf("attributes %v", attrs)
	}
	for _, s := range spans {
		for _, kv := range s.Attributes {
			if strings.Contains(kv.Value.Emit(), "secret-token") || strings.Contains(kv.Value.Emit(), "jane") {
				t.Fatalf("span %s leaks %s=%s", s.Name, kv.Key, kv.Value.Emit())
			}
		}
	}
	if broken.Status.Code != codes.Error || broken.Name != "sage GET /v3.1/sales_invoices/broken" {
		t.Fatalf("5xx span %q status %v", broken.Name, broken.Status)
	}
}

func TestRouteAndSageResource(t *testing.T) {
	for path, want := range map[string]string{
		"/rest/V1/byte8/invoice/42":                         "/rest/V1/byte8/invoice/{id}",
		"/v3.1/contacts/0f9c2d7e6b5a4c3d2e1f0a9b8c7d6e5f":   "/v3.1/contacts/{id}",
		"/v3.1/sales_invoices":                              "/v3.1/sales_invoices",
		"/runs/2f0e7c8e-3c1b-4d4e-9d7f-0b6a4d1c9e21/events": "/runs/{id}/events",
	} {
		if got := telemetry.Route(path); got != want {
			t.Errorf("Route(%q) = %q, want %q", path, got, want)
		}
	}
	for path, want := range map[string]string{"/v3.1/sales_invoices/abc": "sales_invoices", "/token": "token", "/v3.1": ""} {
		if got := telemetry.SageResource(path); got != want {
			t.Errorf("SageResource(%q) = %q, want %q", path, got, want)
		}
	}
}
