package telemetry_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/ledgersync/ledger/libs/telemetry"
)

// BenchmarkHTTPTransport compares, in one run, a call through the plain
// transport, through otelhttp's (what HTTPTransport was) and through
// HTTPTransport, inside a parent span as every Ledger call is (a
// consumer's). sampled records every span (an SDK provider with
// AlwaysSample and no exporter); off samples none, as Ledger runs without an
// OTLP endpoint (spans have ids but record nothing). loopback calls a local
// httptest server; canned answers from memory, so the time is the wrappers'
// own and not the loopback round trip's, which varies more between runs than
// the wrappers cost.
//
//	go test -run '^$' -bench BenchmarkHTTPTransport -benchmem -count=5 ./libs/telemetry
func BenchmarkHTTPTransport(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"0f9c2d7e6b5a4c3d2e1f0a9b8c7d6e5f","status":"ok"}`)
	}))
	defer srv.Close()
	url := srv.URL + "/v3.1/contacts/0f9c2d7e6b5a4c3d2e1f0a9b8c7d6e5f?search=jane"
	bases := []struct {
		name string
		rt   http.RoundTripper
	}{{"loopback", srv.Client().Transport}, {"canned", canned{}}}

	for _, sampling := range []struct {
		name    string
		sampler sdktrace.Sampler
	}{{"sampled", sdktrace.AlwaysSample()}, {"off", sdktrace.NeverSample()}} {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampling.sampler))
		ctx, parent := tp.Tracer("bench").Start(b.Context(), "writer process")
		ctx = telemetry.WithPeer(ctx, telemetry.PeerSage)
		for _, base := range bases {
			for _, transport := range []struct {
				name string
				rt   http.RoundTripper
			}{
				{"plain", base.rt},
				{"otelhttp", otelhttp.NewTransport(base.rt, otelhttp.WithPropagators(telemetry.Propagator()))},
				{"ledger", telemetry.HTTPTransport(base.rt)},
			} {
				hc := &http.Client{Transport: transport.rt}
				b.Run(sampling.name+"/"+base.name+"/"+transport.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
						resp, err := hc.Do(req)
						if err != nil {
							b.Fatal(err)
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				})
			}
		}
		parent.End()
		_ = tp.Shutdown(b.Context())
	}
}

// canned answers every request with the same small JSON body, from memory.
type canned struct{}

func (canned) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/json"}},
		Body:    io.NopCloser(strings.NewReader(`{"id":"0f9c2d7e6b5a4c3d2e1f0a9b8c7d6e5f","status":"ok"}`)),
		Request: r,
	}, nil
}
