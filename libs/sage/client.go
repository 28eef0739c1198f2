package sage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ledgersync/ledger/libs/telemetry"
)

// TokenSource returns a valid access token for a binding (refreshing it when
// needed). After a 401 the caller forces a refresh itself and retries once.
type TokenSource interface {
	AccessToken(ctx context.Context) (string, error)
}

// StaticToken is a TokenSource for a token already in hand (the connect flow).
type StaticToken string

// AccessToken returns the token.
func (t StaticToken) AccessToken(context.Context) (string, error) { return string(t), nil }

// Client calls the Sage v3.1 API for one business.
type Client struct {
	BaseURL    string // Endpoints.APIURL, e.g. https://api.accounting.sage.com/v3.1
	HTTP       *http.Client
	Tokens     TokenSource
	BusinessID string // sent as X-Business on every call when set
}

// defaultHTTP is the client of callers that bring none: traced, 30 s timeout.
// A caller's own client should be traced too (telemetry.HTTPClient).
var defaultHTTP = sync.OnceValue(func() *http.Client {
	return telemetry.HTTPClient(&http.Client{Timeout: 30 * time.Second})
})

// Response is a 2xx answer.
type Response struct {
	Status    int
	Body      []byte
	RequestID string
	// Business is the X-Business header Sage echoed; differing from the
	// requested business means the lead business changed under us.
	Business string
	Duration time.Duration
}

// ErrTransport wraps network failures (resets, timeouts). For a POST the
// outcome is ambiguous: Sage may have created the document.
var ErrTransport = errors.New("sage: transport error")

// Do sends a JSON request and returns the 2xx response, an *APIError, or an error
// wrapping ErrTransport.
func (c *Client) Do(ctx context.Context, method, path string, body any) (*Response, error) {
	ctx = telemetry.WithPeer(ctx, telemetry.PeerSage) // names the client span
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("sage: encoding %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, fmt.Errorf("sage: request %s %s: %w", method, path, err)
	}
	tok, err := c.Tokens.AccessToken(ctx)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.BusinessID != "" {
		req.Header.Set("X-Business", c.BusinessID)
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP()
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", ErrTransport, method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: reading body: %w", ErrTransport, method, path, err)
	}
	reqID := resp.Header.Get("X-Request-Id")
	if reqID == "" {
		reqID = resp.Header.Get("x_request_id")
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b := raw
		if len(b) > 16<<10 {
			b = b[:16<<10]
		}
		return nil, &APIError{Method: method, Path: path, Status: resp.StatusCode, Items: ParseErrors(raw),
			Body: string(b), RequestID: reqID, RetryAfter: resp.Header.Get("Retry-After")}
	}
	return &Response{Status: resp.StatusCode, Body: raw, RequestID: reqID,
		Business: resp.Header.Get("X-Business"), Duration: time.Since(start)}, nil
}

// Get decodes GET path into out.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	resp, err := c.Do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return fmt.Errorf("sage: GET %s: unexpected response shape: %w", path, err)
	}
	return nil
}

// Document is the part of any Sage resource Ledger reads back.
type Document struct {
	ID          string `json:"id"`
	DisplayedAs string `json:"displayed_as"`
	Reference   string `json:"reference"`
	Path        string `json:"$path"`
}

// Create POSTs {rootKey: obj} to /resource and returns the created document.
func (c *Client) Create(ctx context.Context, resource, rootKey string, obj json.RawMessage) (Document, *Response, error) {
	resp, err := c.Do(ctx, http.MethodPost, "/"+resource, map[string]json.RawMessage{rootKey: obj})
	if err != nil {
		return Document{}, nil, err
	}
	var d Document
	if err := json.Unmarshal(resp.Body, &d); err != nil || d.ID == "" {
		return Document{}, resp, fmt.Errorf("sage: POST /%s: created document has no id", resource)
	}
	return d, resp, nil
}

// Update PUTs {rootKey: obj} to /resource/id and returns the document as Sage
// now holds it. Sage changes only the fields obj sends.
func (c *Client) Update(ctx context.Context, resource, rootKey, id string, obj json.RawMessage) (Document, *Response, error) {
	path := "/" + resource + "/" + url.PathEscape(id)
	resp, err := c.Do(ctx, http.MethodPut, path, map[string]json.RawMessage{rootKey: obj})
	if err != nil {
		return Document{}, nil, err
	}
	var d Document
	if err := json.Unmarshal(resp.Body, &d); err != nil || d.ID == "" {
		return Document{}, resp, fmt.Errorf("sage: PUT %s: updated document has no id", path)
	}
	return d, resp, nil
}

// List is Sage's list envelope.
type List[T any] struct {
	Total        int    `json:"$total"`
	Page         int    `json:"$page"`
	Next         string `json:"$next"`
	ItemsPerPage int    `json:"$itemsPerPage"`
	Items        []T    `json:"$items"`
}

// FindByReference searches /resource for documents whose reference equals ref
// exactly (Sage's search is a contains-match over several fields, so the exact
// comparison happens here). It follows $next.
func (c *Client) FindByReference(ctx context.Context, resource, ref string) ([]Document, error) {
	q := url.Values{"search": {ref}, "items_per_page": {"200"}, "attributes": {"reference"}}
	path := "/" + resource + "?" + q.Encode()
	var out []Document
	for page := 0; path != "" && page < 50; page++ {
		var l List[Document]
		if err := c.Get(ctx, path, &l); err != nil {
			return nil, err
		}
		for _, d := range l.Items {
			if d.Reference == ref {
				out = append(out, d)
			}
		}
		path = nextPath(l.Next)
	}
	return out, nil
}

// nextPath turns a list's $next (a path such as /contacts?page=2, or an
// absolute URL) into the path to request, "" to stop. Only its path and query
// are used, and they must start with "/": the path is appended to BaseURL as
// text, and anything else ("@host/…") could change the host the bearer token
// goes to.
func nextPath(next string) string {
	if next == "" {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil {
		return ""
	}
	path := strings.TrimPrefix(u.RequestURI(), "/v3.1")
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		return ""
	}
	return path
}

// Business is the part of /businesses Ledger reads.
type Business struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DisplayedAs string `json:"displayed_as"`
}

// LeadBusiness returns GET /businesses/lead.
func (c *Client) LeadBusiness(ctx context.Context) (Business, error) {
	var b Business
	err := c.Get(ctx, "/businesses/lead", &b)
	return b, err
}
