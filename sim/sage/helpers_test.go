package sagesim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// testStart is the simulated time every test begins at.
var testStart = time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)

const testRedirect = "https://ledger.example/oauth/sage/callback"

// env is one simulator behind a real loopback HTTP server, plus a logged-in client.
type env struct {
	t       testing.TB
	sim     *Server
	srv     *httptest.Server
	http    *http.Client
	access  string
	refresh string
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testStart }
	}
	sim := New(cfg)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &env{t: t, sim: sim, srv: srv, http: client}
}

// loggedIn is newEnv plus a completed OAuth code flow.
func loggedIn(t testing.TB, cfg Config) *env {
	e := newEnv(t, cfg)
	tok := e.exchangeOK(e.authorize(DefaultClientID, testRedirect, "xyz", ""))
	e.access, e.refresh = tok.AccessToken, tok.RefreshToken
	return e
}

// authorize runs the authorization endpoint and returns the code from the redirect.
func (e *env) authorize(clientID, redirect, state, simUser string) string {
	e.t.Helper()
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"full_access"}, "filter": {"apiv3.1"}}
	if state != "" {
		q.Set("state", state)
	}
	if simUser != "" {
		q.Set("sim_user", simUser)
	}
	resp, err := e.http.Get(e.srv.URL + "/oauth2/auth/central?" + q.Encode())
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("authorize: status %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	return loc.Query().Get("code")
}

func (e *env) postForm(path string, form url.Values) (int, []byte) {
	e.t.Helper()
	resp, err := e.http.PostForm(e.srv.URL+path, form)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *env) exchange(code string) (int, []byte) {
	return e.postForm("/token", url.Values{
		"client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret},
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect},
	})
}

func (e *env) exchangeOK(code string) TokenResponse {
	e.t.Helper()
	status, body := e.exchange(code)
	if status != http.StatusOK {
		e.t.Fatalf("exchange: %d %s", status, body)
	}
	var tok TokenResponse
	mustJSON(e.t, body, &tok)
	return tok
}

func (e *env) refreshWith(rt string) (int, []byte) {
	return e.postForm("/token", url.Values{
		"client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret},
		"grant_type": {"refresh_token"}, "refresh_token": {rt},
	})
}

// do sends an API request with the env's access token. headers are key, value pairs.
func (e *env) do(method, path string, body any, headers ...string) (*http.Response, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.srv.URL+"/v3.1"+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.access != "" {
		req.Header.Set("Authorization", "Bearer "+e.access)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// expect asserts the status and returns the body.
func (e *env) expect(status int, method, path string, body any, headers ...string) []byte {
	e.t.Helper()
	resp, b := e.do(method, path, body, headers...)
	if resp.StatusCode != status {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, status, b)
	}
	return b
}

func mustJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func errorsOf(t testing.TB, b []byte) []APIError {
	t.Helper()
	var errs []APIError
	mustJSON(t, b, &errs)
	return errs
}

// customer creates a CUSTOMER contact and returns it.
func (e *env) customer(name, ref string) Contact {
	e.t.Helper()
	var c Contact
	mustJSON(e.t, e.expect(http.StatusCreated, "POST", "/contacts", map[string]any{"contact": map[string]any{
		"name": name, "reference": ref, "contact_type_ids": []string{"CUSTOMER"},
		"main_address":     map[string]any{"address_line_1": "1 High Street", "city": "London", "postal_code": "N1 1AA", "country_id": "GB"},
		"delivery_address": map[string]any{"address_line_1": "9 Dock Road", "city": "Leeds", "postal_code": "LS1 1AA", "country_id": "GB"},
	}}), &c)
	return c
}

// salesLedger returns the id of Sales Type A (4000).
func (e *env) salesLedger() string {
	e.t.Helper()
	lead := e.sim.LeadBusinessID()
	e.sim.mu.RLock()
	defer e.sim.mu.RUnlock()
	return e.sim.businesses[lead].ledgerAccountByCode(4000).ID
}

// goodLine is an invoice line that passes every quirk.
func goodLine(ledgerID, desc, unit, tax string) map[string]any {
	return map[string]any{
		"description": desc, "ledger_account_id": ledgerID, "quantity": 1, "unit_price": unit,
		"tax_rate_id": "GB_STANDARD", "tax_amount": tax, "currency_tax_amount": tax,
	}
}

// goodInvoice is a sales invoice payload that passes every quirk.
func goodInvoice(contactID string, lines ...map[string]any) map[string]any {
	return map[string]any{
		"contact_id": contactID, "date": "2026-01-15", "reference": "100000042",
		"main_address":         map[string]any{"address_line_1": "1 High Street", "city": "London", "postal_code": "N1 1AA", "country_id": "GB"},
		"delivery_address":     map[string]any{"address_line_1": "7 Mill Lane", "city": "York", "postal_code": "YO1 1AA", "country_id": "GB"},
		"invoice_lines":        lines,
		"shipping_net_amount":  "0",
		"shipping_tax_rate_id": "GB_ZERO",
	}
}

func (e *env) createInvoice(payload map[string]any) SalesInvoice {
	e.t.Helper()
	var inv SalesInvoice
	mustJSON(e.t, e.expect(http.StatusCreated, "POST", "/sales_invoices", map[string]any{"sales_invoice": payload}), &inv)
	return inv
}

// contactWith creates a contact from a full payload and returns it.
func (e *env) contactWith(fields map[string]any) Contact {
	e.t.Helper()
	var c Contact
	mustJSON(e.t, e.expect(http.StatusCreated, "POST", "/contacts", map[string]any{"contact": fields}), &c)
	return c
}

// foreignCustomer creates a CUSTOMER in France trading in EUR.
func (e *env) foreignCustomer(name, ref string) Contact {
	e.t.Helper()
	return e.contactWith(map[string]any{
		"name": name, "reference": ref, "contact_type_ids": []string{"CUSTOMER"}, "currency_id": "EUR",
		"main_address": map[string]any{"address_line_1": "1 Rue de Rivoli", "city": "Paris", "postal_code": "75001", "country_id": "FR"},
	})
}

// zeroLine is a correct cross-border line: zero rated, with its EU type.
func zeroLine(ledgerID, desc, unit, euType string) map[string]any {
	return map[string]any{
		"description": desc, "ledger_account_id": ledgerID, "quantity": 1, "unit_price": unit,
		"tax_rate_id": "GB_ZERO", "tax_amount": "0", "currency_tax_amount": "0", "eu_goods_services_type_id": euType,
	}
}

// bankAccountID returns the lead business's first bank account (1200 Current).
func (e *env) bankAccountID() string {
	e.t.Helper()
	e.sim.mu.RLock()
	defer e.sim.mu.RUnlock()
	return e.sim.businesses[e.sim.LeadBusinessID()].bankAccounts[0].ID
}

// payment builds a contact_payment body; allocs are artefact id, amount pairs.
func (e *env) payment(typ, contactID, total string, allocs ...string) map[string]any {
	var arts []map[string]any
	for i := 0; i+1 < len(allocs); i += 2 {
		arts = append(arts, map[string]any{"artefact_id": allocs[i], "amount": allocs[i+1]})
	}
	return map[string]any{"contact_payment": map[string]any{
		"transaction_type_id": typ, "contact_id": contactID, "bank_account_id": e.bankAccountID(),
		"payment_method_id": "CREDIT_DEBIT", "date": "2026-01-16", "total_amount": total, "allocated_artefacts": arts,
	}}
}

// pay posts a payment that must succeed.
func (e *env) pay(typ, contactID, total string, allocs ...string) ContactPayment {
	e.t.Helper()
	var p ContactPayment
	mustJSON(e.t, e.expect(http.StatusCreated, "POST", "/contact_payments", e.payment(typ, contactID, total, allocs...)), &p)
	return p
}

// outstanding is the simulator's view of an artefact's outstanding amount.
func (e *env) outstanding(id string) string {
	e.t.Helper()
	a, ok := e.sim.Outstanding(e.sim.LeadBusinessID())[id]
	if !ok {
		e.t.Fatalf("no outstanding amount for %s", id)
	}
	return a.String()
}

// balance is a contact's balance.
func (e *env) balance(contactID string) string {
	return e.sim.Balances(e.sim.LeadBusinessID())[contactID].String()
}

// invoiceStatus reads an invoice over the API and returns status and outstanding.
func (e *env) invoiceStatus(id string) (string, string) {
	e.t.Helper()
	var inv SalesInvoice
	mustJSON(e.t, e.expect(http.StatusOK, "GET", "/sales_invoices/"+id, nil), &inv)
	return inv.Status.ID, inv.OutstandingAmount.String()
}

// waitCalls polls until route has been logged n times with status: the log is
// written when the handler returns, which can be just after the client has its
// answer.
func (e *env) waitCalls(route string, status, n int) {
	e.t.Helper()
	for deadline := time.Now().Add(2 * time.Second); e.sim.CallCount(route, status) != n; {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s %d: %d calls, want %d", route, status, e.sim.CallCount(route, status), n)
		}
		time.Sleep(time.Millisecond)
	}
}
