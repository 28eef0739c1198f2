package telemetry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// HTTPHandler makes every request to h a server span (otelhttp), continuing
// the caller's trace from its traceparent header. service names the
// operation; the span is named "METHOD pattern" for ServeMux routes and
// "METHOD service" otherwise (a handler may rename it to its route template).
// Probes and scrapes (/healthz, /readyz, /metrics) are not traced.
func HTTPHandler(h http.Handler, service string) http.Handler {
	return otelhttp.NewHandler(h, service,
		otelhttp.WithPropagators(Propagator()),
		otelhttp.WithSpanNameFormatter(serverSpanName),
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false
			}
			return true
		}))
}

func serverSpanName(service string, r *http.Request) string {
	if r.Pattern != "" {
		if strings.Contains(r.Pattern, " ") {
			return r.Pattern
		}
		return r.Method + " " + r.Pattern
	}
	return r.Method + " " + service
}

// HTTPTransport makes every request through base a client span named
// "peer METHOD route" (ids in the path become {id}), injecting traceparent.
// The peer is what the caller put in the request's context (WithPeer: the
// Magento and Sage clients of libs do), else "http". The span carries the
// method, the URL without its userinfo and query (queries may hold search
// terms), the server's address and port, the status (Error for 4xx, 5xx and
// transport errors) and, for Sage, the resource; never headers or bodies. It
// ends when the response body is read to its end or closed, or at once when
// the call fails. Wrap a transport once; an instrumented one (this or
// otelhttp's) is returned as it is.
//
// It is Ledger's own RoundTripper rather than otelhttp's, which also builds
// and records HTTP client metrics for every request that Ledger never
// exports (no MeterProvider is set up) and looks up its tracer again for
// every request: 6–10 % of a service's CPU in make bench's profiles.
// BenchmarkHTTPTransport compares the two.
func HTTPTransport(base http.RoundTripper) http.RoundTripper {
	switch base.(type) {
	case *clientTransport, *otelhttp.Transport:
		return base
	case nil:
		base = http.DefaultTransport
	}
	return &clientTransport{base: base}
}

// HTTPClient returns a copy of c (a client without timeout when nil) whose
// transport is HTTPTransport.
func HTTPClient(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	}
	out.Transport = HTTPTransport(out.Transport)
	return &out
}

type peerKey struct{}

// Peers of Ledger's HTTP calls.
const (
	PeerMagento = "magento"
	PeerSage    = "sage"
)

// WithPeer names the service the HTTP calls made with ctx go to (magento,
// sage), for their client spans.
func WithPeer(ctx context.Context, peer string) context.Context {
	return context.WithValue(ctx, peerKey{}, peer)
}

func peerOf(ctx context.Context) string {
	if p, ok := ctx.Value(peerKey{}).(string); ok {
		return p
	}
	return "http"
}

// clientTransport is HTTPTransport's RoundTripper: otelhttp's client span,
// without its per-request metric attributes and recording (Ledger exports no
// metrics through OpenTelemetry), without a new tracer per request, and with
// no attributes built at all when the span records nothing (tracing off).
type clientTransport struct {
	base http.RoundTripper
	// last is the tracer of the provider the previous request used. A
	// process has one provider (a test may have its own), so the tracer is
	// looked up again only when the provider changes.
	last atomic.Pointer[providerTracer]
}

type providerTracer struct {
	provider trace.TracerProvider
	tracer   trace.Tracer
}

var clientSpanKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}

func (t *clientTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	peer, method := peerOf(ctx), r.Method
	if method == "" {
		method = http.MethodGet // what net/http sends for an empty method
	}
	ctx, span := t.tracerFor(ctx).Start(ctx, peer+" "+method+" "+Route(r.URL.Path), clientSpanKind...)
	// The attributes are gathered in one slice and set once, when the call
	// is over: each SetAttributes grows the span's own slice.
	var kv []attribute.KeyValue
	recording := span.IsRecording()
	if recording {
		kv = requestAttributes(r, method, peer)
	}

	// A RoundTripper must not change its caller's request: traceparent goes
	// in a copy of the header map, sized for it (growing a map allocates).
	// The values are shared, not copied: injecting replaces a key's values,
	// never appends to them. traceparent is injected even when the span
	// records nothing, so the ids travel with tracing off.
	header := make(http.Header, len(r.Header)+1)
	for k, v := range r.Header {
		header[k] = v
	}
	r = r.WithContext(ctx)
	r.Header = header
	Propagator().Inject(ctx, propagation.HeaderCarrier(header))

	res, err := t.base.RoundTrip(r)
	if err == nil && res == nil {
		err = fmt.Errorf("telemetry: %T returned neither a response nor an error", t.base)
	}
	if err != nil {
		if recording {
			span.SetAttributes(append(kv, semconv.ErrorType(err))...)
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		return res, err
	}
	if !recording {
		span.End() // records nothing: no need to wait for the body
		return res, nil
	}
	span.SetAttributes(responseAttributes(kv, res)...)
	switch code := res.StatusCode; {
	case code < 100 || code >= 600:
		span.SetStatus(codes.Error, fmt.Sprintf("Invalid HTTP status code %d", code))
	case code >= 400:
		span.SetStatus(codes.Error, "")
	}
	switch res.Body {
	case nil, http.NoBody:
		span.End()
	default:
		res.Body = traceBody(res.Body, span)
	}
	return res, nil
}

// tracerFor is the tracer of the provider otelhttp would use: the parent
// span's, else the global one (which, before Setup installs a provider,
// delegates to the one Setup installs, so a transport made before Setup
// traces once it has run).
func (t *clientTransport) tracerFor(ctx context.Context) trace.Tracer {
	var tp trace.TracerProvider
	if parent := trace.SpanFromContext(ctx); parent.SpanContext().IsValid() {
		tp = parent.TracerProvider()
	} else {
		tp = otel.GetTracerProvider()
	}
	// Comparing interfaces panics only when both hold the same type that is
	// not comparable; only comparable providers are kept, so it never does.
	if last := t.last.Load(); last != nil && last.provider == tp {
		return last.tracer
	}
	tracer := tp.Tracer(InstrumentationName)
	if reflect.TypeOf(tp).Comparable() {
		t.last.Store(&providerTracer{provider: tp, tracer: tracer})
	}
	return tracer
}

// requestAttributes are the semantic-convention attributes otelhttp sets on a
// client span, with url.full stripped of userinfo, query and fragment, and
// Ledger's peer.service and (for Sage) resource.
func requestAttributes(r *http.Request, method, peer string) []attribute.KeyValue {
	kv := make([]attribute.KeyValue, 0, 11) // room for responseAttributes
	if known := strings.ToUpper(method); isStandardMethod(known) {
		kv = append(kv, semconv.HTTPRequestMethodKey.String(known))
		if known != method {
			kv = append(kv, semconv.HTTPRequestMethodOriginal(method))
		}
	} else {
		kv = append(kv, semconv.HTTPRequestMethodOther, semconv.HTTPRequestMethodOriginal(method))
	}

	u := *r.URL
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	kv = append(kv, semconv.URLFull(u.String()))

	server := r.URL
	if server.Host == "" {
		server = &url.URL{Host: r.Host}
	}
	kv = append(kv, semconv.ServerAddress(server.Hostname()))
	defaultPort := 80
	if r.URL.Scheme == "https" {
		defaultPort = 443
	}
	if port, err := strconv.Atoi(server.Port()); err == nil && port > 0 && port != defaultPort {
		kv = append(kv, semconv.ServerPort(port)) // only a port the URL had to name, as otelhttp
	}

	kv = append(kv, attribute.String("peer.service", peer))
	if peer == PeerSage {
		if res := SageResource(r.URL.Path); res != "" {
			kv = append(kv, AttrSageResource.String(res))
		}
	}
	return kv
}

func isStandardMethod(m string) bool {
	switch m {
	case http.MethodConnect, http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodOptions,
		http.MethodPatch, http.MethodPost, http.MethodPut, http.MethodTrace:
		return true
	}
	return false
}

// responseAttributes appends to kv the status code, error.type for an error
// status (as otelhttp sets it) and the negotiated protocol version.
func responseAttributes(kv []attribute.KeyValue, res *http.Response) []attribute.KeyValue {
	if res.StatusCode > 0 {
		kv = append(kv, semconv.HTTPResponseStatusCode(res.StatusCode))
	}
	if res.StatusCode >= 400 || res.StatusCode < 100 {
		kv = append(kv, semconv.ErrorTypeKey.String(strconv.Itoa(res.StatusCode)))
	}
	if _, version, ok := strings.Cut(res.Proto, "/"); ok && version != "" {
		kv = append(kv, semconv.NetworkProtocolVersion(version))
	}
	return kv
}

// traceBody wraps a response body so that span ends when the body is read
// to its end or closed, whichever comes first. A body that also writes (a
// protocol switch) keeps its Write.
func traceBody(body io.ReadCloser, span trace.Span) io.ReadCloser {
	b := &tracedBody{body: body, span: span}
	if _, ok := body.(io.ReadWriteCloser); ok {
		return tracedReadWriteBody{b}
	}
	return b
}

type tracedBody struct {
	body  io.ReadCloser
	span  trace.Span
	ended atomic.Bool
}

func (b *tracedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	switch err {
	case nil:
	case io.EOF:
		b.end()
	default:
		b.fail(err)
	}
	return n, err
}

// Close ends the span before closing the body, which may block.
func (b *tracedBody) Close() error {
	b.end()
	return b.body.Close()
}

func (b *tracedBody) end() {
	if b.ended.CompareAndSwap(false, true) {
		b.span.End()
	}
}

func (b *tracedBody) fail(err error) {
	b.span.SetAttributes(semconv.ErrorType(err))
	b.span.SetStatus(codes.Error, err.Error())
}

type tracedReadWriteBody struct{ *tracedBody }

func (b tracedReadWriteBody) Write(p []byte) (int, error) {
	n, err := b.body.(io.Writer).Write(p)
	if err != nil {
		b.fail(err)
	}
	return n, err
}

// Route is path with the segments that are ids (numbers, long hex or uuids)
// replaced by {id}, so span names stay few. It runs for every request, so it
// scans bytes instead of matching regexps, and returns path itself when no
// segment is an id.
func Route(path string) string {
	var out strings.Builder
	copied, start := 0, 0 // path[:copied] is in out; the segment begins at start
	for i := 0; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' {
			continue
		}
		if isIDSegment(path[start:i]) {
			if out.Len() == 0 {
				out.Grow(len(path))
			}
			out.WriteString(path[copied:start])
			out.WriteString("{id}")
			copied = i
		}
		start = i + 1
	}
	if out.Len() == 0 {
		return path // no ids: nothing allocated
	}
	out.WriteString(path[copied:])
	return out.String()
}

// isIDSegment reports whether the (escaped) path segment s names an id: all
// digits, or at least 16 hex digits and dashes (hashes, uuids).
func isIDSegment(s string) bool {
	if strings.IndexByte(s, '%') >= 0 {
		u, err := url.PathUnescape(s)
		if err != nil {
			return false
		}
		s = u
	}
	if s == "" {
		return false
	}
	digits := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
		case 'a' <= c && c <= 'f', 'A' <= c && c <= 'F', c == '-':
			digits = false
		default:
			return false
		}
	}
	return digits || len(s) >= 16 // else hex digits and dashes only
}

// SageResource is the Sage API resource a path names: the segment after the
// version (/v3.1/sales_invoices/… → sales_invoices), or the first one.
func SageResource(path string) string {
	rest := strings.Trim(path, "/")
	first, _, _ := strings.Cut(rest, "/")
	for {
		seg, after, more := strings.Cut(rest, "/")
		if isVersionSegment(seg) {
			if !more {
				return ""
			}
			next, _, _ := strings.Cut(after, "/")
			return next
		}
		if !more {
			return first
		}
		rest = after
	}
}

// isVersionSegment reports whether s is an API version: v3, V1, v3.1.
func isVersionSegment(s string) bool {
	if len(s) < 2 || (s[0] != 'v' && s[0] != 'V') {
		return false
	}
	major, minor, dot := strings.Cut(s[1:], ".")
	return allDigits(major) && (!dot || allDigits(minor))
}

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
