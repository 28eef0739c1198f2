package sage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzParseErrors feeds arbitrary error bodies (Sage's $-keyed array, the
// token endpoint's object, a proxy's HTML) to ParseErrors and the APIError
// built from them. An array of objects yields one item per element; Primary
// is one of the items (the zero item when there are none) and is the umbrella
// "line_items.description ... required" entry only when every entry is one;
// Error names method, path and status and carries the primary message.
func FuzzParseErrors(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		items := ParseErrors(body)
		var arr []json.RawMessage
		if json.Unmarshal(body, &arr) == nil && json.Unmarshal(body, new([]ErrorItem)) == nil && len(items) != len(arr) {
			t.Fatalf("%s: %d items from an array of %d", body, len(items), len(arr))
		}
		e := &APIError{Method: http.MethodPost, Path: "/sales_invoices", Status: 422, Items: items, Body: string(body)}
		p := e.Primary()
		found := len(items) == 0 && p == ErrorItem{}
		umbrellas := 0
		for _, it := range items {
			found = found || it == p
			if isUmbrella(it) {
				umbrellas++
			}
		}
		if !found {
			t.Fatalf("%s: Primary %+v is not one of %+v", body, p, items)
		}
		if isUmbrella(p) && len(items) > 1 && umbrellas < len(items) {
			t.Fatalf("%s: Primary is the umbrella entry though another exists: %+v", body, items)
		}
		msg := e.Error()
		if !strings.HasPrefix(msg, "sage POST /sales_invoices: HTTP 422: ") || !strings.Contains(msg, p.Message) {
			t.Fatalf("Error() = %q for primary %+v", msg, p)
		}
	})
}

func isUmbrella(it ErrorItem) bool {
	return it.Source == umbrellaSource && strings.Contains(strings.ToLower(it.Message), "required")
}

// roundTrip serves a Client's requests from the fuzz input.
type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

const fuzzAPI = "https://api.example.test/v3.1"

// FuzzClient answers every call of the Client with one fuzzed status, body
// and Retry-After: Create either returns a document with an id or an error
// (an *APIError for a non-2xx answer, with the parsed items and at most 16 KiB
// of body); FindByReference returns only documents whose reference is exactly
// the one asked for, follows $next at most 50 times, and never sends the
// bearer token to another host than the API's, whatever $next says (even
// from a base URL without a path).
func FuzzClient(f *testing.F) {
	f.Fuzz(func(t *testing.T, status uint16, body []byte, retryAfter, ref string) {
		code := 100 + int(status)%500
		calls := 0
		c := &Client{BaseURL: fuzzAPI, Tokens: StaticToken("tok"), BusinessID: "biz",
			HTTP: &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
				calls++
				if r.URL.Scheme != "https" || r.URL.Host != "api.example.test" || r.URL.User != nil {
					t.Fatalf("request to %s: the token would leave the API host", r.URL.Redacted())
				}
				if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("X-Business") != "biz" {
					t.Fatalf("headers %v", r.Header)
				}
				h := http.Header{"X-Request-Id": {"req-1"}}
				if retryAfter != "" {
					h.Set("Retry-After", retryAfter)
				}
				return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
			})}}
		ctx := context.Background()

		doc, resp, err := c.Create(ctx, "sales_invoices", "sales_invoice", json.RawMessage(`{"reference":"SI-1"}`))
		switch {
		case code < 200 || code > 299:
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != code || ae.RequestID != "req-1" || len(ae.Body) > 16<<10 ||
				!sameItems(ae.Items, ParseErrors(body)) || ae.Error() == "" {
				t.Fatalf("HTTP %d %q: %#v", code, body, err)
			}
			if ae.RetryAfter != retryAfter {
				t.Fatalf("Retry-After %q kept as %q", retryAfter, ae.RetryAfter)
			}
		case err == nil:
			if doc.ID == "" || resp == nil || resp.Status != code {
				t.Fatalf("created %+v from %q", doc, body)
			}
		}

		// Also from a base URL without a path of its own, where a $next of
		// "@other.host/x" appended as text would name another host.
		for _, base := range []string{fuzzAPI, "https://api.example.test"} {
			c.BaseURL, calls = base, 0
			docs, err := c.FindByReference(ctx, "contacts", ref)
			if calls > 50 {
				t.Fatalf("FindByReference made %d calls", calls)
			}
			if err == nil {
				for _, d := range docs {
					if d.Reference != ref {
						t.Fatalf("FindByReference(%q) returned %+v", ref, d)
					}
				}
			}
		}
	})
}

func sameItems(a, b []ErrorItem) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzTokenResponse feeds arbitrary token-endpoint answers through the OAuth
// client (golang.org/x/oauth2 decodes them, convert reads the extras). A
// refusal is an error, ErrInvalidGrant for invalid_grant; an accepted answer
// has an access token, an access expiry in the future and a refresh expiry in
// the future (a refresh_token_expires_in too large for a time.Duration must
// not wrap around into the past, which would mark the binding expired).
func FuzzTokenResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, status uint16, contentType string, body []byte) {
		code := 100 + int(status)%500
		o := OAuth{Endpoints: At("https://oauth.example.test"), ClientID: "id", ClientSecret: "secret",
			RedirectURL: "https://ledger.example/callback",
			HTTP: &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
				if r.URL.String() != "https://oauth.example.test/token" {
					t.Fatalf("request to %s", r.URL)
				}
				h := http.Header{}
				if contentType != "" {
					h.Set("Content-Type", contentType)
				}
				return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
			})}}
		before := time.Now()
		tok, err := o.Exchange(context.Background(), "code")
		if err != nil {
			if errors.Is(err, ErrInvalidGrant) && !bytes.Contains(body, []byte("invalid_grant")) {
				t.Fatalf("ErrInvalidGrant for %q", body)
			}
			return
		}
		if tok.Access == "" {
			t.Fatalf("accepted %q without an access token", body)
		}
		if !tok.RefreshExpiresAt.After(before) {
			t.Fatalf("HTTP %d %q: the refresh token expires at %v, before it was issued (%v)", code, body, tok.RefreshExpiresAt, before)
		}
	})
}

// FuzzParseRegionalAPI feeds SAGE_REGION_API_URLS values. Whatever it
// accepts maps known regions to absolute http(s) URLs with a host and a path
// (the API base, e.g. https://host/v3.1), so a paging link appended to it can
// never change the host; For returns them, or the default for anything else.
func FuzzParseRegionalAPI(f *testing.F) {
	f.Fuzz(func(t *testing.T, s, region string) {
		m, err := ParseRegionalAPI(s)
		if err != nil {
			if !strings.Contains(err.Error(), "region=https://host/v3.1") {
				t.Fatalf("error %v does not say what is expected", err)
			}
			return
		}
		for r, u := range m {
			if norm, err := NormaliseRegion(r); err != nil || norm != r {
				t.Fatalf("%q: region key %q is not normalised", s, r)
			}
			p, err := url.Parse(u)
			if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.User != nil ||
				p.Path == "" || p.Path == "/" || p.RawQuery != "" || p.Fragment != "" {
				t.Fatalf("%q: %s=%q is not an API base URL (%v)", s, r, u, err)
			}
			if strings.HasSuffix(u, "/") {
				t.Fatalf("%q: %q keeps a trailing slash", s, u)
			}
		}
		got := m.For(region, "default")
		if norm, err := NormaliseRegion(region); err == nil && m[norm] != "" {
			if got != m[norm] {
				t.Fatalf("For(%q) = %q, want %q", region, got, m[norm])
			}
		} else if got != "default" {
			t.Fatalf("For(%q) = %q, want the default", region, got)
		}
	})
}
