package magentosim

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/magento"
)

// fakeClock is a settable shop clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 4, 29, 10, 11, 12, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// ledgerCall is one request the fake Ledger received.
type ledgerCall struct {
	Method, Path, RawPath string
	Header                http.Header
	Body                  string
}

// fakeLedger records requests and answers with respond (202 by default).
type fakeLedger struct {
	*httptest.Server
	mu      sync.Mutex
	calls   []ledgerCall
	respond func(w http.ResponseWriter, r *http.Request)
}

func newFakeLedger(t *testing.T) *fakeLedger {
	t.Helper()
	l := &fakeLedger{}
	l.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		l.mu.Lock()
		l.calls = append(l.calls, ledgerCall{r.Method, r.URL.Path, r.URL.EscapedPath(), r.Header.Clone(), string(b)})
		respond := l.respond
		l.mu.Unlock()
		if respond != nil {
			respond(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"sync_run_id":"run-1"}`)
	}))
	t.Cleanup(l.Close)
	return l
}

func (l *fakeLedger) setRespond(f func(w http.ResponseWriter, r *http.Request)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.respond = f
}

func (l *fakeLedger) Calls() []ledgerCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ledgerCall(nil), l.calls...)
}

const (
	testTenant = "tenant-42"
	testKey    = "byte8_lk_test_secret"
)

func newTestShop(t *testing.T, clock *fakeClock) *Shop {
	t.Helper()
	return New(Config{Now: clock.Now})
}

// pair pairs shop with the fake ledger through the Go API.
func pair(t *testing.T, shop *Shop, ledgerURL string) {
	t.Helper()
	code := shop.GeneratePairingCode()
	if err := shop.Pair(magento.PairRequest{PairingCode: code, TenantID: testTenant, APIKey: testKey, LedgerBaseURL: ledgerURL + "/"}); err != nil {
		t.Fatalf("pair: %v", err)
	}
}

// restClient is Ledger's client for the shop behind srv.
func restClient(srv *httptest.Server, clock *fakeClock) *magento.Client {
	return &magento.Client{BaseURL: srv.URL, TenantID: testTenant, APIKey: testKey, HTTP: srv.Client(), Now: clock.Now}
}

func bg() context.Context { return context.Background() }
