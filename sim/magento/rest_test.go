package magentosim

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
)

const unauthorizedBody = `{"message":"The consumer isn't authorized to access %resources.","parameters":{"resources":"Byte8_Client::byte8_webapi"}}`

// do sends a request to the shop and returns status and body.
func do(t *testing.T, srv *httptest.Server, method, path, auth, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, string(b)
}

func inbound(t *testing.T, clock *fakeClock) string {
	t.Helper()
	tok, err := magento.MintInbound(testKey, testTenant, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok
}

func TestPairing(t *testing.T) {
	clock := newClock()
	shop := newTestShop(t, clock)
	srv := httptest.NewServer(shop.Handler())
	defer srv.Close()
	pairBody := func(code, tenant, key, url string) string {
		b, _ := json.Marshal(map[string]string{"pairing_code": code, "tenant_id": tenant, "byte8_api_key": key, "ledger_base_url": url})
		return string(b)
	}
	const invalid = `{"message":"Invalid or expired pairing code."}`
	cases := []struct {
		name, body string
		status     int
		want       string
	}{
		{"missing key", `{"pairing_code":"x","tenant_id":"t","byte8_api_key":"k"}`, 400,
			`{"message":"\"%fieldName\" is required. Enter and try again.","parameters":{"fieldName":"ledgerBaseUrl"}}`},
		{"null keys", `{"pairing_code":null,"tenant_id":"t","byte8_api_key":null,"ledger_base_url":"x"}`, 400,
			`{"message":"One or more input exceptions have occurred.","errors":[{"message":"\"%fieldName\" is required. Enter and try again.","parameters":{"fieldName":"pairingCode"}},{"message":"\"%fieldName\" is required. Enter and try again.","parameters":{"fieldName":"byte8ApiKey"}}]}`},
		{"blank", pairBody(" ", "t", "k", "https://l"), 400, `{"message":"pairing_code, tenant_id, byte8_api_key and ledger_base_url are all required."}`},
		{"slash-only url", pairBody("c", "t", "k", "///"), 400, `{"message":"pairing_code, tenant_id, byte8_api_key and ledger_base_url are all required."}`},
		{"bad url before code check", pairBody("c", "t", "k", "ftp://ledger"), 400, `{"message":"ledger_base_url must be an absolute http(s) URL."}`},
		{"no code pending", pairBody("c", "t", "k", "https://l"), 401, invalid},
	}
	for _, c := range cases {
		status, body := do(t, srv, "POST", "/rest/V1/byte8/setup/pair", "", c.body)
		if status != c.status || body != c.want {
			t.Errorf("%s: %d %s\nwant %d %s", c.name, status, body, c.status, c.want)
		}
	}

	old := shop.GeneratePairingCode()
	code := shop.GeneratePairingCode()
	if len(code) != 32 || strings.ToLower(code) != code {
		t.Fatalf("code %q", code)
	}
	if status, body := do(t, srv, "POST", "/rest/V1/byte8/setup/pair", "", pairBody(old, testTenant, testKey, "https://l")); status != 401 || body != invalid {
		t.Errorf("superseded code: %d %s", status, body)
	}
	if status, body := do(t, srv, "POST", "/rest/V1/byte8/setup/pair", "", pairBody(strings.ToUpper(code), testTenant, testKey, "https://l")); status != 401 || body != invalid {
		t.Errorf("case-changed code: %d %s", status, body)
	}
	clock.Advance(1801 * time.Second)
	if status, body := do(t, srv, "POST", "/rest/V1/byte8/setup/pair", "", pairBody(code, testTenant, testKey, "https://l")); status != 401 || body != invalid {
		t.Errorf("expired code: %d %s", status, body)
	}
	if shop.Connected() {
		t.Fatal("connected after refusals")
	}

	code = shop.GeneratePairingCode()
	clock.Advance(1800 * time.Second) // exactly the TTL is still valid
	camel := fmt.Sprintf(`{"pairingCode":" %s\n","tenantId":"%s","byte8ApiKey":"%s","ledgerBaseUrl":"https://ledger.example.com/base//"}`, code, testTenant, testKey)
	if status, body := do(t, srv, "POST", "/rest/default/V1/byte8/setup/pair", "", camel); status != 200 || body != "[]" {
		t.Fatalf("pair: %d %s", status, body)
	}
	if !shop.Connected() || shop.TenantID() != testTenant || shop.BaseURL() != "https://ledger.example.com/base" {
		t.Fatalf("after pair: connected=%v tenant=%q base=%q", shop.Connected(), shop.TenantID(), shop.BaseURL())
	}
	if status, body := do(t, srv, "POST", "/rest/V1/byte8/setup/pair", "", camel); status != 401 || body != invalid {
		t.Errorf("reused code: %d %s", status, body)
	}
}

func TestInboundJWT(t *testing.T) {
	clock := newClock()
	shop := newTestShop(t, clock)
	srv := httptest.NewServer(shop.Handler())
	defer srv.Close()

	if status, body := do(t, srv, "GET", "/rest/V1/byte8/ping", inbound(t, clock), ""); status != 401 || body != unauthorizedBody {
		t.Fatalf("unpaired ping: %d %s", status, body)
	}
	pair(t, shop, "https://ledger.example.com")

	tok := inbound(t, clock)
	status, body := do(t, srv, "GET", "/rest/V1/byte8/ping", tok, "")
	if status != 200 || body != `[true,"tenant-42","2026-04-29T10:11:12+00:00"]` {
		t.Fatalf("ping: %d %s", status, body)
	}
	if status, body := do(t, srv, "GET", "/rest/V1/byte8/ping", tok, ""); status != 401 || body != unauthorizedBody {
		t.Fatalf("replayed jti: %d %s", status, body)
	}
	if err := restClient(srv, clock).Ping(bg()); err != nil {
		t.Fatalf("client ping: %v", err)
	}
	lower := "bearer " + strings.TrimPrefix(inbound(t, clock), "Bearer ")
	if status, _ := do(t, srv, "GET", "/rest/all/V1/byte8/payment-methods", lower, ""); status != 200 {
		t.Fatalf("lowercase bearer on store path: %d", status)
	}

	now := clock.Now().Unix()
	key := magento.Subkey(testKey, magento.PurposeInbound)
	sign := func(c magento.Claims, k []byte) string {
		s, err := magento.Sign(k, c)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + s
	}
	good := func() magento.Claims {
		return magento.Claims{Iss: magento.IssuerLedger, Sub: testTenant, Aud: magento.AudienceMagento, Iat: now - 30, Nbf: now - 30, Exp: now + 240, Jti: magento.NewJTI()}
	}
	bad := map[string]string{}
	c := good()
	c.Aud = "byte8-ledger"
	bad["wrong aud"] = sign(c, key)
	c = good()
	c.Nbf = now + 1
	bad["nbf in the future"] = sign(c, key)
	c = good()
	c.Exp = now
	bad["expired"] = sign(c, key)
	c = good()
	c.Iat, c.Exp = now-100, now+201
	bad["lifetime over 300 s"] = sign(c, key)
	c = good()
	c.Sub = "other"
	bad["wrong tenant"] = sign(c, key)
	bad["outbound key"] = sign(good(), magento.Subkey(testKey, magento.PurposeOutbound))
	bad["no bearer"] = strings.TrimPrefix(sign(good(), key), "Bearer ")
	bad["missing"] = ""
	for name, auth := range bad {
		if status, body := do(t, srv, "GET", "/rest/V1/byte8/ping", auth, ""); status != 401 || body != unauthorizedBody {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	c = good()
	c.Nbf, c.Iat = now, now
	if status, _ := do(t, srv, "GET", "/rest/V1/byte8/ping", sign(c, key), ""); status != 200 {
		t.Errorf("nbf == now refused: %d", status)
	}

	// The replay cache forgets a jti once the token has expired.
	c = good()
	c.Exp = now + 5
	replay := sign(c, key)
	if status, _ := do(t, srv, "GET", "/rest/V1/byte8/ping", replay, ""); status != 200 {
		t.Fatal("short token refused")
	}
	clock.Advance(5 * time.Second)
	if status, _ := do(t, srv, "GET", "/rest/V1/byte8/ping", replay, ""); status != 401 {
		t.Fatal("expired token accepted")
	}

	// Routing: unknown byte8 route 404, core route 401.
	if status, body := do(t, srv, "GET", "/rest/V1/byte8/nope", inbound(t, clock), ""); status != 404 || body != `{"message":"Request does not match any route."}` {
		t.Errorf("unknown route: %d %s", status, body)
	}
	if status, body := do(t, srv, "GET", "/rest/V1/orders/1", inbound(t, clock), ""); status != 401 || body != unauthorizedBody {
		t.Errorf("core route: %d %s", status, body)
	}
}

func TestEntityEndpoints(t *testing.T) {
	clock := newClock()
	shop := newTestShop(t, clock)
	srv := httptest.NewServer(shop.Handler())
	defer srv.Close()
	pair(t, shop, "https://ledger.example.com")
	rng := rand.New(rand.NewPCG(7, 7))
	res := shop.Seed(rng, Options{Customers: 3, Invoices: 5, PaidShare: 1})
	inv := res.InvoiceIDs[0]
	cm, err := shop.CreateCreditMemo(inv, "Damaged")
	if err != nil {
		t.Fatal(err)
	}
	noPay, _ := shop.CreateInvoice(magento.Invoice{State: InvoiceOpen})

	cases := []struct {
		path   string
		status int
		want   string // exact body, or "" to skip
	}{
		{"/rest/V1/byte8/invoice/abc", 400, `{"message":"Invalid type for value: \"abc\". Expected Type: \"int\"."}`},
		{"/rest/V1/byte8/invoice/0", 400, `{"message":"An ID is needed. Set the ID and try again."}`},
		{"/rest/V1/byte8/payment/0", 400, `{"message":"An ID is needed. Set the ID and try again."}`},
		{"/rest/V1/byte8/invoice/999", 404, `{"message":"The entity that was requested doesn't exist. Verify the entity and try again."}`},
		{"/rest/V1/byte8/creditmemo/999", 404, `{"message":"The entity that was requested doesn't exist. Verify the entity and try again."}`},
		{"/rest/V1/byte8/customer/999", 404, `{"message":"No such entity with %fieldName = %fieldValue","parameters":{"fieldName":"customerId","fieldValue":999}}`},
		{"/rest/V1/byte8/customer/0", 404, `{"message":"No such entity with %fieldName = %fieldValue","parameters":{"fieldName":"customerId","fieldValue":0}}`},
		{"/rest/V1/byte8/product/999", 404, `{"message":"The product that was requested doesn't exist. Verify the product and try again."}`},
		{fmt.Sprintf("/rest/V1/byte8/payment/%d", noPay.MagentoID), 404, fmt.Sprintf(`{"message":"Invoice %%1 has no associated order payment.","parameters":[%d]}`, noPay.MagentoID)},
		{fmt.Sprintf("/rest/V1/byte8/invoice/%d", inv), 200, ""},
		{fmt.Sprintf("/rest/V1/byte8/customer/%d", res.CustomerIDs[0]), 200, ""},
		{fmt.Sprintf("/rest/V1/byte8/creditmemo/%d", cm.MagentoID), 200, ""},
		{"/rest/V1/byte8/product/1", 200, ""},
	}
	for _, c := range cases {
		status, body := do(t, srv, "GET", c.path, inbound(t, clock), "")
		if status != c.status || (c.want != "" && body != c.want) {
			t.Errorf("%s: %d %s\nwant %d %s", c.path, status, body, c.status, c.want)
		}
	}

	var p magento.Payment
	if err := restClient(srv, clock).Get(bg(), fmt.Sprintf("/V1/byte8/payment/%d", inv), &p); err != nil {
		t.Fatal(err)
	}
	full, _ := shop.Invoice(inv)
	if p.InvoiceID != inv || p.Method != full.PaymentMethod || !p.Amount.Equal(full.GrandTotal.Amount) || p.CapturedAt != full.CreatedAt || p.Currency != "GBP" {
		t.Errorf("payment = %+v for invoice %+v", p, full)
	}
	var methods []magento.PaymentMethod
	if err := restClient(srv, clock).Get(bg(), "/V1/byte8/payment-methods", &methods); err != nil || len(methods) == 0 || methods[1].Code != "checkmo" {
		t.Errorf("payment methods: %v %+v", err, methods)
	}
	var gotCM CreditMemo
	if err := restClient(srv, clock).Get(bg(), fmt.Sprintf("/V1/byte8/creditmemo/%d", cm.MagentoID), &gotCM); err != nil ||
		gotCM.InvoiceID == nil || *gotCM.InvoiceID != inv || !gotCM.GrandTotal.Equal(full.GrandTotal.Amount) || gotCM.Reason != "Damaged" {
		t.Errorf("credit memo: %v %+v", err, gotCM)
	}
	if _, ok := shop.OutboxRowByKey(fmt.Sprintf("creditmemo.created:%d", cm.MagentoID)); !ok {
		t.Error("creditmemo.created not enqueued")
	}

	// Down: every /rest request answers 503; /__sim still answers.
	shop.SetDown(true)
	if status, body := do(t, srv, "GET", "/rest/V1/byte8/ping", inbound(t, clock), ""); status != 503 || !strings.Contains(body, "Internal Error") {
		t.Errorf("down ping: %d %s", status, body)
	}
	if status, _ := do(t, srv, "GET", "/__sim/status", "", ""); status != 200 {
		t.Errorf("down sim status: %d", status)
	}
}

func TestSyncStateEndpoint(t *testing.T) {
	clock := newClock()
	shop := newTestShop(t, clock)
	srv := httptest.NewServer(shop.Handler())
	defer srv.Close()
	pair(t, shop, "https://ledger.example.com")
	post := func(body string) (int, string) {
		return do(t, srv, "POST", "/rest/V1/byte8/sync-state", inbound(t, clock), body)
	}
	long := strings.Repeat("a", 65)
	cases := []struct{ body, want string }{
		{`{"entity_type":"invoice","magento_entity_id":1,"provider":"sage_accounting"}`,
			`{"message":"\"%fieldName\" is required. Enter and try again.","parameters":{"fieldName":"syncStatus"}}`},
		{`{"entity_type":"invoice","provider":null}`,
			`{"message":"One or more input exceptions have occurred.","errors":[{"message":"\"%fieldName\" is required. Enter and try again.","parameters":{"fieldName":"magentoEntityId"}},{"message":"\"%fieldName\" is required. Enter and try again.","parameters":{"fieldName":"provider"}},{"message":"\"%fieldName\" is required. Enter and try again.","parameters":{"fieldName":"syncStatus"}}]}`},
		{`{"entity_type":"order","magento_entity_id":1,"provider":"sage_accounting","sync_status":"synced"}`,
			`{"message":"Unknown entity_type %1; expected one of: %2","parameters":["order","invoice, creditmemo, customer, product"]}`},
		{`{"entity_type":"invoice","magento_entity_id":0,"provider":"sage_accounting","sync_status":"synced"}`,
			`{"message":"magento_entity_id must be positive"}`},
		{`{"entity_type":"invoice","magento_entity_id":"x1","provider":"sage_accounting","sync_status":"synced"}`,
			`{"message":"Invalid type for value: \"x1\". Expected Type: \"int\"."}`},
		{`{"entity_type":"invoice","magento_entity_id":1,"provider":"","sync_status":"synced"}`,
			`{"message":"provider must be non-empty"}`},
		{`{"entity_type":"invoice","magento_entity_id":1,"provider":"sage_accounting","sync_status":"pending"}`,
			`{"message":"Invalid sync_status %1; pending is Magento-side only and must not arrive via callback. Expected: %2","parameters":["pending","synced, skipped, failed"]}`},
		{`{"entity_type":"invoice","magento_entity_id":1,"provider":"sage_accounting","sync_status":"synced","provider_entity_id":"` + long + `"}`,
			`{"message":"Could not upsert sync state for %1\/%2: %3","parameters":["invoice",1,"SQLSTATE[22001]: String data, right truncated: 1406 Data too long for column 'provider_entity_id' at row 1"]}`},
		{`{"entity_type":"invoice","magento_entity_id":1,"provider":"sage_accounting","sync_status":"synced","last_sync_at":"yesterday"}`,
			`{"message":"Could not upsert sync state for %1\/%2: %3","parameters":["invoice",1,"SQLSTATE[22007]: Invalid datetime format: 1292 Incorrect datetime value: 'yesterday' for column 'last_sync_at' at row 1"]}`},
		{`not json`, `{"message":"Decoding error."}`},
	}
	for _, c := range cases {
		if status, body := post(c.body); status != 400 || body != c.want {
			t.Errorf("%s\n got %d %s\nwant 400 %s", c.body, status, body, c.want)
		}
	}
	if n := len(shop.SyncStates()); n != 0 {
		t.Fatalf("refused callbacks stored %d rows", n)
	}

	// Upsert, snake_case with RFC 3339.
	status, body := post(`{"entity_type":"invoice","magento_entity_id":42,"provider":"sage_accounting","sync_status":"failed","provider_entity_id":null,"skip_reason":"x","error_code":"provider","last_sync_at":"2026-04-29T09:00:00Z","ignored":1}`)
	if status != 200 || body != "[]" {
		t.Fatalf("upsert: %d %s", status, body)
	}
	st, ok := shop.SyncState("invoice", 42)
	if !ok || st.SyncStatus != SyncFailed || st.ErrorCode == nil || *st.ErrorCode != "provider" || st.ProviderEntityID != nil ||
		!st.LastSyncAt.Equal(time.Date(2026, 4, 29, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("row = %+v", st)
	}
	// camelCase, MySQL layout; every optional column is overwritten (absent clears).
	status, _ = post(`{"entityType":"invoice","magentoEntityId":"42","provider":"sage_accounting","syncStatus":"synced","providerEntityId":"` + strings.Repeat("b", 64) + `","lastSyncAt":"2026-04-29 10:00:00"}`)
	if status != 200 {
		t.Fatalf("camelCase upsert: %d", status)
	}
	st, _ = shop.SyncState("invoice", 42)
	if st.SyncStatus != SyncSynced || st.ProviderEntityID == nil || len(*st.ProviderEntityID) != 64 || st.ErrorCode != nil || st.SkipReason != nil ||
		!st.LastSyncAt.Equal(time.Date(2026, 4, 29, 10, 0, 0, 0, time.UTC)) || st.EntityID != 1 {
		t.Fatalf("overwritten row = %+v", st)
	}
	// No last_sync_at: now.
	clock.Advance(time.Minute)
	_, _ = post(`{"entity_type":"invoice","magento_entity_id":42,"provider":"sage_accounting","sync_status":"skipped","skip_reason":"zero_value_invoice"}`)
	st, _ = shop.SyncState("invoice", 42)
	if st.SyncStatus != SyncSkipped || !st.LastSyncAt.Equal(clock.Now()) || len(shop.SyncStates()) != 1 {
		t.Fatalf("defaulted row = %+v", st)
	}
	// Through Ledger's client type.
	ref := "SI-9"
	if err := restClient(srv, clock).Post(bg(), "/V1/byte8/sync-state", magento.SyncState{
		EntityType: "customer", MagentoEntityID: 3, Provider: magento.ProviderSage, SyncStatus: "synced", ProviderReference: &ref,
		LastSyncAt: clock.Now().Format(magento.MySQLTimestamp),
	}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestSeededInvoicesAreConsistent(t *testing.T) {
	clock := newClock()
	shop := newTestShop(t, clock)
	srv := httptest.NewServer(shop.Handler())
	defer srv.Close()
	pair(t, shop, "https://ledger.example.com")
	res := shop.Seed(rand.New(rand.NewPCG(42, 1)), Options{Customers: 25, Invoices: 150, GuestShare: 0.3, PaidShare: 0.5})
	if len(res.CustomerIDs) != 25 || len(res.InvoiceIDs) != 150 {
		t.Fatalf("seeded %d customers, %d invoices", len(res.CustomerIDs), len(res.InvoiceIDs))
	}
	client := restClient(srv, clock)
	var guests, paid, entities, rates, zeroShipTax int
	for _, id := range res.InvoiceIDs {
		var inv magento.Invoice
		if err := client.Get(bg(), fmt.Sprintf("/V1/byte8/invoice/%d", id), &inv); err != nil {
			t.Fatal(err)
		}
		sub, tax := money.Zero, money.Zero
		for _, l := range inv.Lines {
			if !l.Qty.Mul(l.UnitPrice.Amount).Equal(l.LineSubtotal.Amount) || !l.LineSubtotal.Add(l.LineTax.Amount).Equal(l.LineTotal.Amount) {
				t.Errorf("invoice %d line %+v inconsistent", id, l)
			}
			if (l.TaxRate != nil) != (l.LineTax.Sign() > 0 && l.LineSubtotal.Sign() > 0) {
				t.Errorf("invoice %d line %s: tax_rate presence wrong", id, l.SKU)
			}
			if l.TaxRate != nil {
				rates++
			}
			if strings.Contains(l.Name, "&") {
				entities++
			}
			sub = sub.Add(l.LineSubtotal.Amount)
			tax = tax.Add(l.LineTax.Amount)
		}
		if !sub.Equal(inv.Subtotal.Amount) || !tax.Add(inv.ShippingTaxAmount.Amount).Equal(inv.TaxAmount.Amount) {
			t.Errorf("invoice %d: Σ lines %s/%s vs subtotal %s tax %s", id, sub, tax, inv.Subtotal, inv.TaxAmount)
		}
		if got := inv.Subtotal.Add(inv.TaxAmount.Amount).Add(inv.ShippingAmount.Amount).Add(inv.DiscountAmount.Amount); !got.Equal(inv.GrandTotal.Amount) {
			t.Errorf("invoice %d: subtotal+tax+shipping = %s, grand_total %s", id, got, inv.GrandTotal)
		}
		if inv.Currency != "GBP" || inv.BaseToOrderRate == nil || !inv.BaseToOrderRate.Equal(money.MustParse("1")) || len(inv.IncrementID) != 9 {
			t.Errorf("invoice %d header %+v", id, inv)
		}
		if inv.ShippingAmount.Sign() > 0 && inv.ShippingTaxAmount.IsZero() {
			zeroShipTax++
		}
		if inv.Customer.IsGuest() {
			guests++
			if inv.Customer.Email == "" || len(inv.Customer.Addresses) == 0 || inv.Customer.GroupID != nil {
				t.Errorf("invoice %d guest %+v", id, inv.Customer)
			}
		} else {
			kinds := map[string]bool{}
			for _, a := range inv.Customer.Addresses {
				kinds[a.Kind] = true
			}
			if !kinds["billing"] {
				t.Errorf("invoice %d: registered customer without billing address after enrichment", id)
			}
		}
		if inv.State == InvoicePaid {
			paid++
		}
	}
	if guests == 0 || guests == 150 || paid == 0 || paid == 150 || entities == 0 || rates == 0 || zeroShipTax == 0 {
		t.Errorf("poor variety: guests %d paid %d entity names %d rated lines %d untaxed shipping %d", guests, paid, entities, rates, zeroShipTax)
	}
	// Every invoice produced invoice.created; paid ones invoice.paid too.
	c := shop.OutboxCounts()
	if want := 25 + 150 + paid; c.Pending != want {
		t.Errorf("pending rows %d, want %d", c.Pending, want)
	}

	// Same seed, same data.
	other := New(Config{Now: clock.Now})
	other.Seed(rand.New(rand.NewPCG(42, 1)), Options{Customers: 25, Invoices: 150, GuestShare: 0.3, PaidShare: 0.5})
	a, _ := json.Marshal(shop.Invoices())
	b, _ := json.Marshal(other.Invoices())
	if !bytes.Equal(a, b) {
		t.Error("Seed is not deterministic")
	}

	// Magento's renderer escapes slashes and non-ASCII.
	_, raw := do(t, srv, "GET", "/rest/V1/byte8/product/8", inbound(t, clock), "")
	if !strings.Contains(raw, `Cr\u00e8me Br\u00fbl\u00e9e`) {
		t.Errorf("product body not PHP-escaped: %s", raw)
	}
}

func TestDisconnect(t *testing.T) {
	clock := newClock()
	ledger := newFakeLedger(t)
	ledger.setRespond(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	shop := newTestShop(t, clock)
	pair(t, shop, ledger.URL)
	if err := shop.Disconnect(bg()); err != nil {
		t.Fatal(err)
	}
	calls := ledger.Calls()
	sum := sha1.Sum([]byte(testTenant))
	if len(calls) != 1 || calls[0].Method != "POST" || calls[0].Path != "/v1/tenant/disconnect" || calls[0].Body != "{}" ||
		calls[0].Header.Get("Idempotency-Key") != "disconnect:"+hex.EncodeToString(sum[:]) {
		t.Fatalf("disconnect call = %+v", calls)
	}
	tok, err := magento.Parse(strings.TrimPrefix(calls[0].Header.Get("Authorization"), "Bearer "))
	if err != nil || magento.VerifyOutbound(tok, testKey, testTenant, clock.Now()) != nil {
		t.Fatalf("disconnect token: %v", err)
	}
	if shop.Connected() || shop.TenantID() != "" || shop.BaseURL() != ledger.URL {
		t.Fatalf("after disconnect: connected=%v tenant=%q base=%q", shop.Connected(), shop.TenantID(), shop.BaseURL())
	}
	if err := shop.Enqueue(Event{Name: "x"}); err != ErrNotConnected {
		t.Fatalf("enqueue after disconnect: %v", err)
	}

	// A failing Ledger does not stop the local disconnect.
	pair(t, shop, ledger.URL)
	ledger.setRespond(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	if err := shop.Disconnect(bg()); err == nil {
		t.Error("want the failed notification reported")
	}
	if shop.Connected() {
		t.Fatal("still connected")
	}
}

func TestSimEndpoints(t *testing.T) {
	clock := newClock()
	ledger := newFakeLedger(t)
	shop := newTestShop(t, clock)
	srv := httptest.NewServer(shop.Handler())
	defer srv.Close()
	status, body := do(t, srv, "POST", "/__sim/pairing-code", "", "")
	var pc struct {
		PairingCode string `json:"pairing_code"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &pc) != nil || len(pc.PairingCode) != 32 {
		t.Fatalf("pairing-code: %d %s", status, body)
	}
	if err := magento.Pair(bg(), srv.Client(), srv.URL, magento.PairRequest{PairingCode: pc.PairingCode, TenantID: testTenant, APIKey: testKey, LedgerBaseURL: ledger.URL}); err != nil {
		t.Fatal(err)
	}
	if status, body := do(t, srv, "POST", "/__sim/seed", "", `{"seed":3,"customers":2,"invoices":4,"paid_share":0.5}`); status != 200 || !strings.Contains(body, "invoice_ids") {
		t.Fatalf("seed: %d %s", status, body)
	}
	if status, _ := do(t, srv, "POST", "/__sim/invoices", "", `{"customer_id":1,"paid":false}`); status != 201 {
		t.Fatalf("create invoice: %d", status)
	}
	if status, _ := do(t, srv, "POST", "/__sim/invoices/5/pay", "", ""); status != 200 {
		t.Fatalf("pay invoice: %d", status)
	}
	status, body = do(t, srv, "POST", "/__sim/drain", "", "")
	if status != 200 || !strings.Contains(body, `"attempted"`) || shop.OutboxCounts().Pending != 0 {
		t.Fatalf("drain: %d %s %+v", status, body, shop.OutboxCounts())
	}
	var invs []magento.Invoice
	_, body = do(t, srv, "GET", "/__sim/invoices", "", "")
	if json.Unmarshal([]byte(body), &invs) != nil || len(invs) != 5 {
		t.Fatalf("invoices: %s", body)
	}
	if status, body := do(t, srv, "GET", "/__sim/outbox", "", ""); status != 200 || !strings.Contains(body, `"succeeded"`) {
		t.Fatalf("outbox: %d %s", status, body)
	}
	if status, _ := do(t, srv, "POST", "/__sim/disconnect", "", ""); status != 200 || shop.Connected() {
		t.Fatal("disconnect via sim")
	}
}
