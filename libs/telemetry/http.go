package telemetry

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
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
// method, the URL without its query (queries may hold search terms), the
// status (Error for 4xx and 5xx) and, for Sage, the resource; never headers or
// bodies. Wrap a transport once; an instrumented one is returned as it is.
func HTTPTransport(base http.RoundTripper) http.RoundTripper {
	switch base.(type) {
	case *otelhttp.Transport:
		return base
	case nil:
		base = http.DefaultTransport
	}
	return otelhttp.NewTransport(annotated{base},
		otelhttp.WithPropagators(Propagator()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return peerOf(r.Context()) + " " + r.Method + " " + Route(r.URL.Path)
		}))
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

// annotated runs inside otelhttp's transport, where the request's context
// holds the client span: it adds Ledger's attributes and drops the query
// from url.full.
type annotated struct{ base http.RoundTripper }

func (a annotated) RoundTrip(r *http.Request) (*http.Response, error) {
	span := trace.SpanFromContext(r.Context())
	if span.IsRecording() {
		peer := peerOf(r.Context())
		kv := []attribute.KeyValue{attribute.String("peer.service", peer)}
		if r.URL.RawQuery != "" {
			u := *r.URL
			u.User, u.RawQuery = nil, ""
			kv = append(kv, attribute.String("url.full", u.String()))
		}
		if peer == PeerSage {
			if res := SageResource(r.URL.Path); res != "" {
				kv = append(kv, AttrSageResource.String(res))
			}
		}
		span.SetAttributes(kv...)
	}
	return a.base.RoundTrip(r)
}

var idSegment = regexp.MustCompile(`^([0-9]+|[0-9a-fA-F-]{16,})$`)
var versionSegment = regexp.MustCompile(`^[vV][0-9]+(\.[0-9]+)?$`)

// Route is path with the segments that are ids (numbers, long hex or uuids)
// replaced by {id}, so span names stay few.
func Route(path string) string {
	seg := strings.Split(path, "/")
	for i, s := range seg {
		if u, err := url.PathUnescape(s); err == nil && idSegment.MatchString(u) {
			seg[i] = "{id}"
		}
	}
	return strings.Join(seg, "/")
}

// SageResource is the Sage API resource a path names: the segment after the
// version (/v3.1/sales_invoices/… → sales_invoices), or the first one.
func SageResource(path string) string {
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
