package sagewriter_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

func TestMain(m *testing.M) { devtest.Main(m) }

const (
	tenantID    = "acme"
	redirectURL = "https://ledger.test/oauth/sage/callback"
)

// stack is one test's world: a fresh database, a NATS server with Ledger's
// streams, the Sage simulator over HTTP, and a tenant authorised through the
// real OAuth flow.
type stack struct {
	t        *testing.T
	st       *store.Store
	js       jetstream.JetStream
	sim      *sagesim.Server
	srv      *httptest.Server
	oauth    sage.OAuth
	business string
	ledger   string // a sales ledger account id of the business
	runs     atomic.Int64
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := t.Context()
	sealer, _ := secrets.NewRandomKeyRing()
	st, err := store.Open(ctx, devtest.Database(t), sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	nc, err := nats.Connect(devtest.NATS(t))
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
	sim := sagesim.New(sagesim.Config{Seed: 7})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	s := &stack{t: t, st: st, js: js, sim: sim, srv: srv,
		oauth: sage.OAuth{Endpoints: sage.At(srv.URL), ClientID: sagesim.DefaultClientID,
			ClientSecret: sagesim.DefaultClientSecret, RedirectURL: redirectURL, HTTP: srv.Client()}}
	if _, err := st.CreateTenant(ctx, tenantID, "Acme Ltd"); err != nil {
		t.Fatal(err)
	}
	s.authorise()
	s.ledger = s.salesLedgerAccount()
	return s
}

// authorise runs the authorization-code flow against the simulator and stores
// the tokens and the lead business, as the admin service's callback does.
func (s *stack) authorise() sage.Token {
	s.t.Helper()
	ctx := s.t.Context()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(s.oauth.AuthCodeURL("state-" + fmt.Sprint(time.Now().UnixNano())))
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		s.t.Fatalf("authorize answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	code := loc.Query().Get("code")
	if code == "" {
		s.t.Fatalf("no code in %s", loc)
	}
	tok, err := s.oauth.Exchange(ctx, code)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.st.SaveTokens(ctx, tenantID, storeTokens(tok)); err != nil {
		s.t.Fatal(err)
	}
	c := &sage.Client{BaseURL: s.oauth.Endpoints.APIURL, HTTP: s.srv.Client(), Tokens: sage.StaticToken(tok.Access)}
	lead, err := c.LeadBusiness(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.st.SetSageStatus(ctx, tenantID, store.StatusActive, lead.ID); err != nil {
		s.t.Fatal(err)
	}
	s.business = lead.ID
	return tok
}

func storeTokens(t sage.Token) store.Tokens {
	return store.Tokens{Access: t.Access, Refresh: t.Refresh, AccessExpiresAt: t.AccessExpiresAt,
		RefreshExpiresAt: t.RefreshExpiresAt, Scope: t.Scope, RequestedByID: t.RequestedByID}
}

// api is a Sage client for test set-up, with the tenant's current token.
func (s *stack) api() *sage.Client {
	tok, err := s.st.Tokens(s.t.Context(), tenantID)
	if err != nil {
		s.t.Fatal(err)
	}
	return &sage.Client{BaseURL: s.oauth.Endpoints.APIURL, HTTP: s.srv.Client(),
		Tokens: sage.StaticToken(tok.Access), BusinessID: s.business}
}

func (s *stack) salesLedgerAccount() string {
	var l sage.List[sage.Document]
	if err := s.api().Get(s.t.Context(), "/ledger_accounts?visible_in=sales&search=4000", &l); err != nil {
		s.t.Fatal(err)
	}
	if len(l.Items) == 0 {
		s.t.Fatal("the simulator has no sales ledger account 4000")
	}
	return l.Items[0].ID
}

// config is the writer's configuration against the simulator, with delays
// short enough for tests.
func (s *stack) config() sagewriter.Config {
	return sagewriter.Config{
		Endpoints: sage.At(s.srv.URL), ClientID: sagesim.DefaultClientID,
		ClientSecret: secrets.String(sagesim.DefaultClientSecret), RedirectURL: redirectURL,
		Workers: 2, MaxDeliver: 10, PauseDelay: time.Second, HTTPTimeout: 10 * time.Second,
		RetryBase: 50 * time.Millisecond, TenantScan: 200 * time.Millisecond, KeepAliveEvery: -1,
		HTTPClient: s.srv.Client(),
	}
}

// startWriter runs the writer until the test ends.
func (s *stack) startWriter(cfg sagewriter.Config) *sagewriter.Service {
	s.t.Helper()
	return s.startOn(cfg, s.st)
}

// startOn runs the writer on st until the test ends.
func (s *stack) startOn(cfg sagewriter.Config, st sagewriter.Store, before ...func(*sagewriter.Service)) *sagewriter.Service {
	s.t.Helper()
	svc, err := sagewriter.New(cfg, st, s.js, telemetry.Logger("sage-writer", testWriter{s.t}))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, f := range before {
		f(svc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	s.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			s.t.Errorf("Run: %v", err)
		}
	})
	return svc
}

// testWriter sends the service's logs to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newRun records a sync run as ingest would and returns its id.
func (s *stack) newRun(event string, entityID int64) string {
	s.t.Helper()
	n := s.runs.Add(1)
	acc, err := s.st.AcceptWebhook(s.t.Context(), store.Delivery{TenantID: tenantID,
		IdempotencyKey: fmt.Sprintf("%s:%d:%d", event, entityID, n), Event: event,
		EntityType: strings.SplitN(event, ".", 2)[0], MagentoEntityID: entityID}, time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	return acc.RunID
}

func (s *stack) publish(w *ledgerv1.SageWrite) {
	s.t.Helper()
	if _, err := bus.Publish(s.t.Context(), s.js, bus.SageSubject(w.TenantId, w.EntityType), w, ""); err != nil {
		s.t.Fatal(err)
	}
}

// waitRun polls until the run is terminal.
func (s *stack) waitRun(id string) store.Run {
	s.t.Helper()
	var r store.Run
	devtest.Eventually(s.t, "run "+id+" finishes", func() bool {
		var err error
		r, err = s.st.Run(s.t.Context(), id)
		return err == nil && r.Terminal()
	})
	return r
}

// streamMsgs returns every message stored on a stream, decoded into T.
func streamMsgs[T proto.Message](t *testing.T, js jetstream.JetStream, stream string, newT func() T) []T {
	t.Helper()
	ctx := t.Context()
	str, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := str.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		v := newT()
		if err := proto.Unmarshal(m.Data, v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func (s *stack) results() []*ledgerv1.SyncResult {
	return streamMsgs(s.t, s.js, bus.StreamResults, func() *ledgerv1.SyncResult { return &ledgerv1.SyncResult{} })
}

func (s *stack) deadLetters() []*ledgerv1.DeadLetter {
	return streamMsgs(s.t, s.js, bus.StreamDLQ, func() *ledgerv1.DeadLetter { return &ledgerv1.DeadLetter{} })
}

func (s *stack) attempts(runID string) []store.Attempt {
	a, err := s.st.Attempts(s.t.Context(), runID)
	if err != nil {
		s.t.Fatal(err)
	}
	return a
}

func (s *stack) tokenRequests() int { return s.sim.CallCount("POST /token", -1) }

func (s *stack) posts(resource string) int { return s.sim.CallCount("POST /v3.1/"+resource, -1) }

// invoiceWrite is what the mapper emits for invoice.created of order n: ensure
// customer M<n>'s contact, then the invoice bound to it.
func (s *stack) invoiceWrite(runID string, n int64) *ledgerv1.SageWrite {
	ref := fmt.Sprintf("M%d", n)
	contact := map[string]any{"name": "Customer " + ref, "reference": ref, "contact_type_ids": []string{"CUSTOMER"},
		"currency_id": "GBP"}
	invoice := map[string]any{
		"date": "2026-01-15", "reference": fmt.Sprintf("INV%d", n), "currency_id": "GBP",
		"main_address":     map[string]any{"address_line_1": "1 High St", "city": "Leeds", "postal_code": "LS1 1AA", "country_id": "GB"},
		"delivery_address": map[string]any{"address_line_1": "1 High St", "city": "Leeds", "postal_code": "LS1 1AA", "country_id": "GB"},
		"invoice_lines": []map[string]any{{
			"description": "Widget", "ledger_account_id": s.ledger, "quantity": "1", "unit_price": "10.00",
			"tax_rate_id": "GB_STANDARD", "tax_amount": "2.00", "currency_tax_amount": "2.00",
		}},
	}
	return &ledgerv1.SageWrite{
		TenantId: tenantID, SyncRunId: runID, Event: "invoice.created", EntityType: "invoice",
		MagentoEntityId: n, ResultKey: "invoice", AppliedQuirks: []string{"s07_line_tax"},
		Operations: []*ledgerv1.SageOperation{
			{Key: "contact", Resource: ledgerv1.SageResource_SAGE_RESOURCE_CONTACT, XrefKind: "contact",
				XrefKey: ref, Currency: "GBP", Reference: ref, IdempotencyId: idem("contact", n), Body: mustJSON(contact)},
			{Key: "invoice", Resource: ledgerv1.SageResource_SAGE_RESOURCE_SALES_INVOICE, XrefKind: "invoice",
				XrefKey: fmt.Sprint(n), Currency: "GBP", Reference: fmt.Sprintf("INV%d", n), IdempotencyId: idem("invoice", n),
				Body: mustJSON(invoice), Bindings: []*ledgerv1.FieldBinding{{Field: "contact_id", FromKey: "contact"}}},
		},
	}
}

// idem is a deterministic 32-hex idempotency_id, as the mapper derives them.
func idem(kind string, n int64) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s:%d", kind, n))
	return hex.EncodeToString(sum[:])[:32]
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
