package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	"github.com/ledgersync/ledger/services/ingest"
)

func TestMain(m *testing.M) { devtest.Main(m) }

const (
	tenantID = "t1"
	apiKey   = "byte8_lk_test_master_secret_t1"
	envelope = `{"magento_entity_id":42,"website_id":1,"store_id":2,"occurred_at":"2026-04-29T10:11:12Z","payload":{"increment_id":"000000042","paid":false}}`
)

// fixture is a running ingest over a fresh database and NATS server, with
// tenant t1 paired under apiKey.
type fixture struct {
	st  *store.Store
	nc  *nats.Conn
	js  jetstream.JetStream
	svc *ingest.Service
	srv *httptest.Server
}

func newFixture(t *testing.T, natsURL string, cfg ingest.Config) *fixture {
	t.Helper()
	ctx := t.Context()
	sealer, _ := secrets.NewRandomKeyRing()
	st, err := store.Open(ctx, devtest.Database(t), sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.CreateTenant(ctx, tenantID, "Shop One"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetMagentoPaired(ctx, tenantID, "https://shop.example", apiKey); err != nil {
		t.Fatal(err)
	}
	// The same connection options as cmd/ingest: publishes fail at once while
	// disconnected.
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectBufSize(-1),
		nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	svc, err := ingest.New(cfg, st, js, telemetry.Discard())
	if err != nil {
		t.Fatal(err)
	}
	// As the runtime (libs/process) serves it: tracing set up, every request
	// a server span.
	shutdown, err := telemetry.Setup(ctx, "ingest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	srv := httptest.NewServer(telemetry.HTTPHandler(svc.Handler(), "ingest"))
	t.Cleanup(srv.Close)
	return &fixture{st: st, nc: nc, js: js, svc: svc, srv: srv}
}

// response is a decoded answer.
type response struct {
	Code   int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

// do sends a request without following redirects.
func (f *fixture) do(t *testing.T, method, path string, body io.Reader, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Code: res.StatusCode, Header: res.Header, Body: b}
}

// token mints what the shop's Signer mints for tenant t1.
func token(t *testing.T) string {
	t.Helper()
	tok, err := magento.MintOutbound(apiKey, tenantID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// webhook posts body as the shop's drain does.
func (f *fixture) webhook(t *testing.T, tenant, event, key, tok, body string) response {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + tok}
	if key != "" {
		h["Idempotency-Key"] = key
	}
	return f.do(t, http.MethodPost, "/webhooks/magento/"+tenant+"/"+event, strings.NewReader(body), h)
}

// outbox returns every message stored on OUTBOX, oldest first.
func (f *fixture) outbox(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	s, err := f.js.Stream(ctx, bus.StreamOutbox)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func wantCode(t *testing.T, r response, code int) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("status %d, want %d; body %s", r.Code, code, bytes.TrimSpace(r.Body))
	}
}
