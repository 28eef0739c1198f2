package ingest_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/ingest"
)

func TestWebhookAcceptsPublishesAndDeduplicates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	const key = "invoice.created:42"
	incoming := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

	r := f.do(t, http.MethodPost, "/webhooks/magento/t1/invoice.created", strings.NewReader(envelope), map[string]string{
		"Authorization": "Bearer " + token(t), "Idempotency-Key": key,
		"Content-Type": "application/json", "traceparent": incoming,
	})
	wantCode(t, r, http.StatusAccepted)
	runID, _ := r.json(t)["sync_run_id"].(string)
	if runID == "" {
		t.Fatalf("no sync_run_id in %s", r.Body)
	}

	msgs := f.outbox(t)
	if len(msgs) != 1 {
		t.Fatalf("%d messages on OUTBOX, want 1", len(msgs))
	}
	m := msgs[0]
	if want := "ledger.outbox.t1.invoice.created"; m.Subject != want {
		t.Errorf("subject %q, want %q", m.Subject, want)
	}
	if got, want := m.Header.Get(nats.MsgIdHdr), "t1:"+key+":"+runID; got != want {
		t.Errorf("Nats-Msg-Id %q, want %q", got, want)
	}
	if got := m.Header.Get(bus.HeaderType); got != "ledger.v1.OutboxEvent" {
		t.Errorf("%s %q", bus.HeaderType, got)
	}
	tp := m.Header.Get(bus.HeaderTraceparent)
	if !strings.HasPrefix(tp, incoming[:36]) || tp == incoming {
		t.Errorf("traceparent %q does not continue the trace of %q with a new span", tp, incoming)
	}
	var evt ledgerv1.OutboxEvent
	if err := proto.Unmarshal(m.Data, &evt); err != nil {
		t.Fatal(err)
	}
	if evt.GetTenantId() != tenantID || evt.GetEvent() != "invoice.created" || evt.GetIdempotencyKey() != key ||
		evt.GetSyncRunId() != runID || evt.GetMagentoEntityId() != 42 || evt.GetWebsiteId() != 1 ||
		evt.GetStoreId() != 2 || evt.GetOccurredAt() != "2026-04-29T10:11:12Z" || evt.GetTraceparent() != tp ||
		string(evt.GetPayload()) != `{"increment_id":"000000042","paid":false}` {
		t.Errorf("decoded event %v", &evt)
	}
	if d := time.Since(evt.GetReceivedAt().AsTime()); d < 0 || d > time.Minute {
		t.Errorf("received_at %v", evt.GetReceivedAt().AsTime())
	}
	run, err := f.st.Run(t.Context(), runID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != store.RunPending || run.EntityType != "invoice" || run.MagentoEntityID != 42 {
		t.Errorf("run %+v", run)
	}

	// The CLI re-sends an already delivered key: same run, nothing published.
	r = f.webhook(t, tenantID, "invoice.created", key, token(t), envelope)
	wantCode(t, r, http.StatusAccepted)
	if got := r.json(t)["sync_run_id"]; got != runID {
		t.Fatalf("repeat got sync_run_id %v, want %s", got, runID)
	}
	if n := len(f.outbox(t)); n != 1 {
		t.Fatalf("%d messages after a duplicate, want 1", n)
	}

	// After the run failed, requeue re-sends the key: a new run and a new
	// message, not swallowed by JetStream's dedupe window.
	if _, err := f.st.FinishRun(t.Context(), store.Outcome{RunID: runID, Status: store.RunFailed, ErrorCode: "x", Message: "x"}); err != nil {
		t.Fatal(err)
	}
	r = f.webhook(t, tenantID, "invoice.created", key, token(t), envelope)
	wantCode(t, r, http.StatusAccepted)
	second, _ := r.json(t)["sync_run_id"].(string)
	if second == "" || second == runID {
		t.Fatalf("re-send after failure got run %q, want a new one (first %s)", second, runID)
	}
	msgs = f.outbox(t)
	if len(msgs) != 2 || msgs[1].Header.Get(nats.MsgIdHdr) != "t1:"+key+":"+second {
		t.Fatalf("want a second message for run %s, have %d", second, len(msgs))
	}

	// An event no handler knows is accepted too; the mapper skips it.
	r = f.webhook(t, tenantID, "order.placed", "order.placed:7", token(t), `{"magento_entity_id":7,"payload":[],"future_key":true}`)
	wantCode(t, r, http.StatusAccepted)
	msgs = f.outbox(t)
	if len(msgs) != 3 || msgs[2].Subject != "ledger.outbox.t1.order.placed" {
		t.Fatalf("unknown event not published: %d messages", len(msgs))
	}
}

func TestWebhookUnauthorized(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	ctx := t.Context()
	if _, err := f.st.CreateTenant(ctx, "unpaired", "Never paired"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sign := func(key string, c magento.Claims) string {
		tok, err := magento.Sign(magento.Subkey(key, magento.PurposeOutbound), c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := func() magento.Claims {
		return magento.Claims{Iss: magento.IssuerMagento, Sub: tenantID, Aud: magento.AudienceLedger,
			Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Unix() + 60, Jti: magento.NewJTI()}
	}
	with := func(mod func(*magento.Claims)) string {
		c := good()
		mod(&c)
		return sign(apiKey, c)
	}
	expired, err := magento.MintOutbound(apiKey, tenantID, now.Add(-10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	inbound, err := magento.MintInbound(apiKey, tenantID, now)
	if err != nil {
		t.Fatal(err)
	}
	unpaired, _ := magento.MintOutbound("whatever", "unpaired", now)
	ghost, _ := magento.MintOutbound(apiKey, "ghost", now)

	// A token used once is refused the second time.
	reused := token(t)
	wantCode(t, f.webhook(t, tenantID, "invoice.created", "invoice.created:1", reused, envelope), http.StatusAccepted)

	cases := []struct {
		name, tenant, token, reason string
	}{
		{"wrong signature", tenantID, sign("some_other_key", good()), "signature"},
		{"wrong aud", tenantID, with(func(c *magento.Claims) { c.Aud = "someone-else" }), "aud"},
		{"wrong iss", tenantID, with(func(c *magento.Claims) { c.Iss = "byte8-ledger" }), "iss"},
		{"inbound token", tenantID, inbound, "signature"},
		{"expired", tenantID, expired, "expired"},
		{"lifetime too long", tenantID, with(func(c *magento.Claims) { c.Exp = c.Iat + 3600 }), "lifetime"},
		{"empty jti", tenantID, with(func(c *magento.Claims) { c.Jti = "" }), "jti"},
		{"reused jti", tenantID, reused, "replayed"},
		{"sub is another tenant", tenantID, with(func(c *magento.Claims) { c.Sub = "t2" }), "sub"},
		{"unknown tenant", "ghost", ghost, "unknown tenant"},
		{"tenant not paired", "unpaired", unpaired, "not paired"},
		{"invalid tenant segment", "t%2F1", token(t), "unknown tenant"},
		{"malformed token", tenantID, "not-a-jwt", "malformed"},
		{"no token", tenantID, "", "Bearer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.webhook(t, tc.tenant, "invoice.created", "invoice.created:2", tc.token, envelope)
			wantCode(t, r, http.StatusUnauthorized)
			body := r.json(t)
			msg, _ := body["message"].(string)
			if body["error"] != "unauthorized" || !strings.Contains(msg, tc.reason) {
				t.Errorf("body %s does not name %q", r.Body, tc.reason)
			}
			if strings.Contains(string(r.Body), apiKey) {
				t.Errorf("body leaks the api key: %s", r.Body)
			}
		})
	}
	if n := len(f.outbox(t)); n != 1 {
		t.Fatalf("%d messages on OUTBOX, want only the first accepted one", n)
	}
}

func TestWebhookRejectsBadRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	cases := []struct {
		name, event, key, body, field string
	}{
		{"missing Idempotency-Key", "invoice.created", "", envelope, "Idempotency-Key"},
		{"Idempotency-Key too long", "invoice.created", strings.Repeat("k", 129), envelope, "Idempotency-Key"},
		{"body not an object", "invoice.created", "k1", `[1,2]`, ""},
		{"body not JSON", "invoice.created", "k1", `magento_entity_id=42`, ""},
		{"body null", "invoice.created", "k1", `null`, ""},
		{"entity id missing", "invoice.created", "k1", `{"payload":{}}`, "magento_entity_id"},
		{"entity id negative", "invoice.created", "k1", `{"magento_entity_id":-1}`, "magento_entity_id"},
		{"entity id a string", "invoice.created", "k1", `{"magento_entity_id":"42"}`, "magento_entity_id"},
		{"entity id a fraction", "invoice.created", "k1", `{"magento_entity_id":4.2}`, "magento_entity_id"},
		{"website id not an integer", "invoice.created", "k1", `{"magento_entity_id":4,"website_id":"x"}`, "website_id"},
		{"event uppercase", "Invoice.Created", "k1", envelope, "event"},
		{"event without a dot", "invoice", "k1", envelope, "event"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.webhook(t, tenantID, tc.event, tc.key, token(t), tc.body)
			wantCode(t, r, http.StatusBadRequest)
			body := r.json(t)
			if body["error"] != "invalid_request" || (tc.field != "" && (body["field"] != tc.field || !strings.Contains(body["message"].(string), tc.field))) {
				t.Errorf("body %s does not name %q", r.Body, tc.field)
			}
		})
	}
	// A key of exactly 128 characters is fine.
	wantCode(t, f.webhook(t, tenantID, "invoice.created", strings.Repeat("k", 128), token(t), envelope), http.StatusAccepted)
	if n := len(f.outbox(t)); n != 1 {
		t.Fatalf("%d messages on OUTBOX, want 1", n)
	}
}

func TestWebhookBodyTooLarge(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	big := `{"magento_entity_id":1,"payload":"` + strings.Repeat("x", ingest.DefaultMaxBodyBytes) + `"}`
	h := func() map[string]string {
		return map[string]string{"Authorization": "Bearer " + token(t), "Idempotency-Key": "k"}
	}
	// With a Content-Length.
	r := f.do(t, http.MethodPost, "/webhooks/magento/t1/invoice.created", strings.NewReader(big), h())
	wantCode(t, r, http.StatusRequestEntityTooLarge)
	if r.json(t)["error"] != "payload_too_large" {
		t.Errorf("body %s", r.Body)
	}
	// Chunked, so the limit is found while reading.
	r = f.do(t, http.MethodPost, "/webhooks/magento/t1/invoice.created", io.MultiReader(strings.NewReader(big)), h())
	wantCode(t, r, http.StatusRequestEntityTooLarge)
	if n := len(f.outbox(t)); n != 0 {
		t.Fatalf("%d messages on OUTBOX, want 0", n)
	}
}

func TestWebhookNATSDownAnswers503ThenRecovers(t *testing.T) {
	t.Parallel()
	ns := devtest.NATSServer(t)
	f := newFixture(t, ns.ClientURL(), ingest.Config{RequestTimeout: 3 * time.Second})
	storeDir, addr := ns.StoreDir(), ns.Addr().(*net.TCPAddr)
	ns.Shutdown()
	ns.WaitForShutdown()

	const key = "invoice.created:9"
	r := f.webhook(t, tenantID, "invoice.created", key, token(t), envelope)
	wantCode(t, r, http.StatusServiceUnavailable)
	body := r.json(t)
	if msg, _ := body["message"].(string); body["error"] != "unavailable" || !strings.Contains(msg, "Magento will retry") {
		t.Errorf("503 body %s", r.Body)
	}

	// The server comes back on the same port and store; the client reconnects.
	back, err := devstack.StartNATS(filepath.Dir(storeDir), devstack.WithNATSPort(addr.Port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Shutdown(); back.WaitForShutdown() })
	devtest.Eventually(t, "the client to reconnect", func() bool { return f.nc.Status() == nats.CONNECTED },
		devtest.Explain(func() string { return "status " + f.nc.Status().String() }))

	// Nothing was accepted while NATS was away: the token cannot be checked
	// against the replay set every replica shares, so no run was recorded.
	if runs, err := f.st.ListRuns(t.Context(), store.RunFilter{TenantID: tenantID}); err != nil || len(runs) != 0 {
		t.Fatalf("runs recorded while NATS was down: %v, %v", runs, err)
	}
	// The shop's retry (a fresh token, the same key) is accepted and
	// published once.
	r = f.webhook(t, tenantID, "invoice.created", key, token(t), envelope)
	wantCode(t, r, http.StatusAccepted)
	run, err := f.st.ListRuns(t.Context(), store.RunFilter{TenantID: tenantID})
	if err != nil || len(run) != 1 || r.json(t)["sync_run_id"] != run[0].ID {
		t.Fatalf("runs %v, %v after the retry answered %s", run, err, r.Body)
	}
	msgs := f.outbox(t)
	if len(msgs) != 1 || msgs[0].Header.Get(nats.MsgIdHdr) != "t1:"+key+":"+run[0].ID {
		t.Fatalf("%d messages after recovery, want 1 for run %s", len(msgs), run[0].ID)
	}
}

func TestNoRedirects(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	for _, path := range []string{
		"/webhooks/magento/t1/invoice.created/",
		"//webhooks/magento/t1/invoice.created",
		"/webhooks//magento/t1/invoice.created",
		"/webhooks/magento//t1/invoice.created",
		"/webhooks/magento/x/../t1/invoice.created",
		"/webhooks/magento/t1/./invoice.created",
		"/v1/tile/health/",
		"/v1//tile/health",
		"/nothing",
	} {
		r := f.do(t, http.MethodPost, path, strings.NewReader(envelope), map[string]string{
			"Authorization": "Bearer " + token(t), "Idempotency-Key": "k",
		})
		if r.Code != http.StatusNotFound || r.Header.Get("Location") != "" || r.json(t)["error"] != "not_found" {
			t.Errorf("%s: status %d, Location %q, body %s; want a JSON 404", path, r.Code, r.Header.Get("Location"), bytes.TrimSpace(r.Body))
		}
	}
	r := f.do(t, http.MethodGet, "/webhooks/magento/t1/invoice.created", nil, nil)
	if r.Code != http.StatusMethodNotAllowed || r.json(t)["error"] != "method_not_allowed" {
		t.Errorf("GET on the webhook: %d %s", r.Code, r.Body)
	}
	if n := len(f.outbox(t)); n != 0 {
		t.Fatalf("%d messages on OUTBOX, want 0", n)
	}
}
