package magento

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ledgersync/ledger/libs/telemetry"
)

// Client calls a paired shop's /rest/V1/byte8 endpoints with a fresh inbound JWT
// per request (a retry is a new request and gets a new jti).
type Client struct {
	BaseURL  string // storefront base URL, e.g. https://shop.example.com
	TenantID string
	APIKey   string // master secret from pairing
	HTTP     *http.Client
	Now      func() time.Time // defaults to time.Now
}

// HTTPError is a non-2xx answer from Magento, with its REST error message decoded
// and its placeholders substituted.
type HTTPError struct {
	Method, Path string
	Status       int
	Message      string
	Body         string // first 8 KiB
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("magento %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Message)
}

// Transient reports whether retrying later may succeed: 5xx, and the sync-state
// "Could not upsert" 400 that Magento uses for a database failure.
func (e *HTTPError) Transient() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.NotSaved()
}

// NotSaved reports the sync-state endpoint's "Could not upsert" 400: the
// shop's database refused the row (a database failure, not a bad request).
func (e *HTTPError) NotSaved() bool {
	return e.Status == http.StatusBadRequest && strings.Contains(e.Message, "Could not upsert")
}

// DecodeError is a 2xx answer whose body is not the expected JSON: a bug or an
// incompatible module version, never fixed by retrying.
type DecodeError struct {
	Method, Path string
	Err          error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("magento %s %s: response is not the expected JSON: %v", e.Method, e.Path, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// IsStatus reports whether err is an HTTPError with the given status.
func IsStatus(err error, status int) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Status == status
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP()
}

// defaultHTTP is the client of callers that bring none: traced, 15 s timeout.
// A caller's own client should be traced too (telemetry.HTTPClient).
var defaultHTTP = sync.OnceValue(func() *http.Client {
	return telemetry.HTTPClient(&http.Client{Timeout: 15 * time.Second})
})

// Get fetches /rest{path} (path starts with /V1/byte8/) into out.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

// Post sends body as JSON to /rest{path}; out may be nil.
func (c *Client) Post(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, path, b, out)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	ctx = telemetry.WithPeer(ctx, telemetry.PeerMagento) // names the client span
	url := strings.TrimRight(c.BaseURL, "/") + "/rest" + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return fmt.Errorf("magento: bad request URL %q: %w", url, err)
	}
	tok, err := MintInbound(c.APIKey, c.TenantID, c.now())
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("magento %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("magento %s %s: reading body: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &HTTPError{Method: method, Path: path, Status: resp.StatusCode, Message: ErrorMessage(raw), Body: truncate(raw, 8192)}
	}
	if out == nil || len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &DecodeError{Method: method, Path: path, Err: err}
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…[truncated]"
}

// ErrorMessage decodes Magento's REST error envelope and substitutes its %1 / %name
// placeholders. A body that is not the envelope is returned as text.
func ErrorMessage(body []byte) string {
	var env struct {
		Message    string          `json:"message"`
		Parameters json.RawMessage `json:"parameters"`
	}
	if json.Unmarshal(body, &env) != nil || env.Message == "" {
		return strings.TrimSpace(truncate(body, 512))
	}
	msg := env.Message
	var list []json.RawMessage
	var named map[string]json.RawMessage
	if json.Unmarshal(env.Parameters, &list) == nil {
		for i := len(list) - 1; i >= 0; i-- { // %10 before %1
			msg = strings.ReplaceAll(msg, fmt.Sprintf("%%%d", i+1), parameterText(list[i]))
		}
	} else if json.Unmarshal(env.Parameters, &named) == nil {
		for k, v := range named {
			msg = strings.ReplaceAll(msg, "%"+k, parameterText(v))
		}
	}
	return msg
}

// parameterText renders a placeholder's value as PHP does: a number as its
// literal text (1000000, never float64's 1e+06), a string as itself, true as
// 1 and false and null as nothing; an array or object as its JSON.
func parameterText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	var s string
	switch {
	case json.Unmarshal(raw, &s) == nil:
		return s
	case string(raw) == "true":
		return "1"
	case string(raw) == "false", string(raw) == "null":
		return ""
	}
	return string(raw)
}

// Ping calls GET /V1/byte8/ping. Any 200 means alive and authorised; both the
// object and the list Magento re-indexes it into are accepted.
func (c *Client) Ping(ctx context.Context) error {
	var v json.RawMessage
	return c.Get(ctx, "/V1/byte8/ping", &v)
}

// Pair calls the anonymous POST /V1/byte8/setup/pair. It carries no token.
func Pair(ctx context.Context, hc *http.Client, shopURL string, req PairRequest) error {
	if hc == nil {
		hc = defaultHTTP()
	}
	ctx = telemetry.WithPeer(ctx, telemetry.PeerMagento)
	b, _ := json.Marshal(req)
	path := "/V1/byte8/setup/pair"
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(shopURL, "/")+"/rest"+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("magento: shop URL %q is not a valid URL: %w", shopURL, err)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json")
	resp, err := hc.Do(r)
	if err != nil {
		return fmt.Errorf("magento: cannot reach the shop at %s: %w", shopURL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &HTTPError{Method: http.MethodPost, Path: path, Status: resp.StatusCode, Message: ErrorMessage(raw), Body: truncate(raw, 8192)}
	}
	return nil
}
