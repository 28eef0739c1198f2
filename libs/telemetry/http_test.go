package telemetry_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ledgersync/ledger/libs/telemetry"
)

// The regexps Route and SageResource used before they became byte loops:
// the loops must give the same answers.
var (
	idSegment      = regexp.MustCompile(`^([0-9]+|[0-9a-fA-F-]{16,})$`)
	versionSegment = regexp.MustCompile(`^[vV][0-9]+(\.[0-9]+)?$`)
)

func routeByRegexp(path string) string {
	seg := strings.Split(path, "/")
	for i, s := range seg {
		if u, err := url.PathUnescape(s); err == nil && idSegment.MatchString(u) {
			seg[i] = "{id}"
		}
	}
	return strings.Join(seg, "/")
}

func sageResourceByRegexp(path string) string {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range seg {
		if versionSegment.MatchString(s) {
			if i+1 < len(seg) {
				return seg[i+1]
			}
			return ""
		}
	}
	return seg[0]
}

var pathShapes = []string{
	"", "/", "//", "42", "/42", "/42/", "/rest/V1/orders/42/items/7", "/rest/V1/byte8/invoice/42",
	"/v3.1/contacts/0f9c2d7e6b5a4c3d2e1f0a9b8c7d6e5f", "/runs/2f0e7c8e-3c1b-4d4e-9d7f-0b6a4d1c9e21/events",
	"/a/0123456789abcde", "/a/0123456789abcdef", "/a/----------------", "/a/0123456789ABCDEF/b",
	"/a/0123456789abcdeg", "/a/%34%32", "/a/%zz", "/a/%2F1", "/a/4%32", "/a/-1", "/a/1.5", "/a/ 1",
	"/v3", "/V12/x", "/v3./x", "/v.1/x", "/v3.1.2/x", "/vv3/x", "/v3.1", "/v3.1/", "/v3.1//x", "token",
	"/token", "/x/v1/y/z", "/x/y/v2", "/ü/42", "/v3.1/sales_invoices/abc?x=1",
}

func TestRouteAndSageResourceMatchTheirRegexps(t *testing.T) {
	for _, path := range pathShapes {
		if got, want := telemetry.Route(path), routeByRegexp(path); got != want {
			t.Errorf("Route(%q) = %q, want %q", path, got, want)
		}
		if got, want := telemetry.SageResource(path), sageResourceByRegexp(path); got != want {
			t.Errorf("SageResource(%q) = %q, want %q", path, got, want)
		}
	}
}

func FuzzRoute(f *testing.F) {
	for _, path := range pathShapes {
		f.Add(path)
	}
	f.Fuzz(func(t *testing.T, path string) {
		if got, want := telemetry.Route(path), routeByRegexp(path); got != want {
			t.Errorf("Route(%q) = %q, want %q", path, got, want)
		}
		if got, want := telemetry.SageResource(path), sageResourceByRegexp(path); got != want {
			t.Errorf("SageResource(%q) = %q, want %q", path, got, want)
		}
	})
}

func attributes(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func TestHTTPTransportSetsTheAttributesOtelhttpSet(t *testing.T) {
	tp, exp := recorder(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	u.User = url.UserPassword("shop", "hunter2")
	u.Path, u.RawQuery, u.Fragment = "/rest/V1/orders/42", "searchCriteria=jane", "top"
	ctx, parent := tp.Tracer("test").Start(t.Context(), "mapper process")
	defer parent.End()
	req, _ := http.NewRequestWithContext(telemetry.WithPeer(ctx, telemetry.PeerMagento), "post", u.String(), strings.NewReader("{}"))
	resp, err := telemetry.HTTPClient(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if req.Header.Get("traceparent") != "" {
		t.Fatal("the caller's request was changed: it has a traceparent header")
	}
	spans := exp.GetSpans().Snapshots()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	if s.Name() != "magento post /rest/V1/orders/{id}" || s.SpanKind() != trace.SpanKindClient ||
		s.Status().Code != codes.Error || s.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("span %q kind %v status %v parent %v", s.Name(), s.SpanKind(), s.Status(), s.Parent())
	}
	want := map[string]string{
		"http.request.method":          "POST",
		"http.request.method_original": "post",
		"url.full":                     "http://" + u.Host + "/rest/V1/orders/42",
		"server.address":               "127.0.0.1",
		"server.port":                  u.Port(),
		"http.response.status_code":    "404",
		"error.type":                   "404",
		"network.protocol.version":     "1.1",
		"peer.service":                 "magento",
	}
	got := attributes(s)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("attributes %v, want exactly %v", got, want)
	}
}

// The span lasts until the body is read to its end or closed: a call is
// not over while its response is still arriving.
func TestHTTPTransportEndsTheSpanWithTheBody(t *testing.T) {
	tp, exp := recorder(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "0123456789")
	}))
	defer srv.Close()
	hc := telemetry.HTTPClient(nil)
	ctx, parent := tp.Tracer("test").Start(t.Context(), "parent")
	defer parent.End()
	get := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/x", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	resp := get()
	if _, err := io.ReadFull(resp.Body, make([]byte, 5)); err != nil || len(exp.GetSpans()) != 0 {
		t.Fatalf("read %v; %d spans ended with half the body unread", err, len(exp.GetSpans()))
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil || len(exp.GetSpans()) != 1 {
		t.Fatalf("read %v; %d spans ended once the body was read", err, len(exp.GetSpans()))
	}
	resp.Body.Close()
	if len(exp.GetSpans()) != 1 {
		t.Fatalf("%d spans after Close: the span ended twice", len(exp.GetSpans()))
	}

	resp = get()
	if len(exp.GetSpans()) != 1 {
		t.Fatalf("%d spans before the second body was closed", len(exp.GetSpans()))
	}
	resp.Body.Close()
	if len(exp.GetSpans()) != 2 {
		t.Fatalf("%d spans after the second body was closed unread", len(exp.GetSpans()))
	}
}

type failingTransport struct{ err error }

func (f failingTransport) RoundTrip(*http.Request) (*http.Response, error) { return nil, f.err }

func TestHTTPTransportRecordsAFailedCall(t *testing.T) {
	tp, exp := recorder(t)
	ctx, parent := tp.Tracer("test").Start(t.Context(), "parent")
	defer parent.End()
	refused := errors.New("connection refused")
	req, _ := http.NewRequestWithContext(telemetry.WithPeer(ctx, telemetry.PeerSage), http.MethodPost, "https://api.example.com/v3.1/contacts", nil)
	if _, err := telemetry.HTTPTransport(failingTransport{refused}).RoundTrip(req); !errors.Is(err, refused) {
		t.Fatalf("error %v, want the transport's", err)
	}
	spans := exp.GetSpans().Snapshots()
	if len(spans) != 1 {
		t.Fatalf("%d spans: a failed call's span ends at once", len(spans))
	}
	s := spans[0]
	got := attributes(s)
	if s.Status().Code != codes.Error || s.Status().Description != "connection refused" || got["error.type"] != "*errors.errorString" ||
		got["ledger.sage.resource"] != "contacts" || got["server.port"] != "" || len(s.Events()) != 1 || s.Events()[0].Name != "exception" {
		t.Fatalf("status %v, attributes %v, events %v", s.Status(), got, s.Events())
	}
}

func TestHTTPTransportWrapsOnce(t *testing.T) {
	once := telemetry.HTTPTransport(nil)
	if telemetry.HTTPTransport(once) != once {
		t.Fatal("a traced transport was wrapped again")
	}
	var instrumented http.RoundTripper = otelhttp.NewTransport(nil)
	if telemetry.HTTPTransport(instrumented) != instrumented {
		t.Fatal("an otelhttp transport was wrapped again")
	}
}

// A transport made before a provider is installed (services build their
// clients in any order) traces with the provider installed later, and with
// tracing off it still sends the ids.
func TestHTTPTransportFollowsTheGlobalProvider(t *testing.T) {
	var gotTraceparent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotTraceparent = r.Header.Get("traceparent")
	}))
	defer srv.Close()
	hc := telemetry.HTTPClient(nil)
	get := func() {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/healthz", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })

	off := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	t.Cleanup(func() { _ = off.Shutdown(t.Context()) })
	otel.SetTracerProvider(off)
	get()
	if !strings.HasPrefix(gotTraceparent, "00-") || !strings.HasSuffix(gotTraceparent, "-00") {
		t.Fatalf("traceparent %q with tracing off: want ids, not sampled", gotTraceparent)
	}

	tp, exp := recorder(t)
	otel.SetTracerProvider(tp)
	get()
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "http GET /healthz" || !strings.Contains(gotTraceparent, spans[0].SpanContext.SpanID().String()) {
		t.Fatalf("spans %v, traceparent %q", spans, gotTraceparent)
	}
}

// Calls from many goroutines, under parents of two providers, each land in
// their parent's provider: the transport's remembered tracer follows the
// provider of each call.
func TestHTTPTransportIsSafeForConcurrentUse(t *testing.T) {
	tpA, expA := recorder(t)
	tpB, expB := recorder(t)
	rt := telemetry.HTTPTransport(canned{})
	const goroutines, calls = 8, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		tp := tpA
		if g%2 == 1 {
			tp = tpB
		}
		wg.Go(func() {
			ctx, parent := tp.Tracer("test").Start(t.Context(), "parent")
			defer parent.End()
			for range calls {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://shop.example/rest/V1/orders/1", nil)
				resp, err := rt.RoundTrip(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	for name, exp := range map[string]interface{ GetSpans() tracetest.SpanStubs }{"A": expA, "B": expB} {
		clients := 0
		for _, s := range exp.GetSpans() {
			if s.SpanKind == trace.SpanKindClient {
				clients++
			}
		}
		if want := goroutines / 2 * calls; clients != want {
			t.Errorf("provider %s has %d client spans, want %d", name, clients, want)
		}
	}
}
