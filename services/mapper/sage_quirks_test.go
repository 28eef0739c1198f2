package mapper

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/ledgersync/ledger/libs/money"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// sageBusiness is a logged-in client of a Sage simulator with every quirk on.
type sageBusiness struct {
	t        *testing.T
	url      string
	http     *http.Client
	token    string
	business string
	ledger   string // a sales-visible ledger account id
}

func newSageBusiness(t *testing.T) *sageBusiness {
	t.Helper()
	sim := sagesim.New(sagesim.Config{})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	hc := srv.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	const redirect = "https://ledger.example/oauth/sage/callback"
	q := url.Values{"client_id": {sagesim.DefaultClientID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"full_access"}, "state": {"s"}}
	resp, err := hc.Get(srv.URL + "/oauth2/auth/central?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	resp, err = hc.PostForm(srv.URL+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {redirect}, "client_id": {sagesim.DefaultClientID}, "client_secret": {sagesim.DefaultClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.AccessToken == "" {
		t.Fatalf("no access token from the simulator (status %d)", resp.StatusCode)
	}
	s := &sageBusiness{t: t, url: srv.URL, http: hc, token: tok.AccessToken, business: sim.LeadBusinessID()}
	var list struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"$items"`
	}
	if status := s.do(http.MethodGet, "/v3.1/ledger_accounts?visible_in=sales", nil, &list); status != 200 || len(list.Items) == 0 {
		t.Fatalf("ledger accounts: status %d, %d items", status, len(list.Items))
	}
	s.ledger = list.Items[0].ID
	return s
}

func (s *sageBusiness) do(method, path string, body []byte, out any) int {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("X-Business", s.business)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	} else if resp.StatusCode/100 != 2 {
		s.t.Logf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

// send plays a SageWrite the way the writer does: operations in order, root
// keys added, bindings applied. edit may change the invoice body first.
func (s *sageBusiness) send(w *ledgerv1.SageWrite, edit func(map[string]any)) (int, sagesim.SalesInvoice) {
	s.t.Helper()
	ids := map[string]string{}
	var inv sagesim.SalesInvoice
	status := 0
	for _, op := range w.Operations {
		var body map[string]any
		if err := json.Unmarshal(op.Body, &body); err != nil {
			s.t.Fatal(err)
		}
		for _, b := range op.Bindings {
			body[b.Field] = ids[b.FromKey]
		}
		body["idempotency_id"] = op.IdempotencyId
		switch op.Resource {
		case ledgerv1.SageResource_SAGE_RESOURCE_CONTACT:
			raw, _ := json.Marshal(map[string]any{"contact": body})
			var c struct {
				ID string `json:"id"`
			}
			if status := s.do(http.MethodPost, "/v3.1/contacts", raw, &c); status != http.StatusCreated && status != http.StatusOK {
				s.t.Fatalf("contact: status %d", status)
			}
			ids[op.Key] = c.ID
		case ledgerv1.SageResource_SAGE_RESOURCE_SALES_INVOICE:
			if edit != nil {
				edit(body)
			}
			raw, _ := json.Marshal(map[string]any{"sales_invoice": body})
			status = s.do(http.MethodPost, "/v3.1/sales_invoices", raw, &inv)
		}
	}
	return status, inv
}

func (s *sageBusiness) build(name string) *ledgerv1.SageWrite {
	s.t.Helper()
	pol, inv := loadFixture(s.t, name)
	pol.DefaultLedgerAccountID = s.ledger
	w, err := Builder{TenantID: "t1", Policy: pol, BaseCurrency: "GBP"}.Invoice(inv)
	if err != nil {
		s.t.Fatal(err)
	}
	return w
}

// §32: untaxed shipping sent with a standard rate gets phantom VAT in Sage.
func TestSageShippingZeroRate(t *testing.T) {
	t.Parallel()
	s := newSageBusiness(t)
	grand := money.MustParse("52.95")

	w := s.build("untaxed_shipping")
	status, inv := s.send(w, func(b map[string]any) { b["shipping_tax_rate_id"] = "GB_STANDARD" })
	if status != http.StatusCreated && status != http.StatusOK {
		t.Fatalf("without the rule: status %d", status)
	}
	if inv.TotalAmount.Equal(grand) {
		t.Fatalf("without the rule Sage should book phantom shipping VAT, got %s", inv.TotalAmount)
	}

	s2 := newSageBusiness(t)
	status, inv = s2.send(s2.build("untaxed_shipping"), nil)
	if status != http.StatusCreated && status != http.StatusOK {
		t.Fatalf("with the rule: status %d", status)
	}
	if !inv.TotalAmount.Equal(grand) || !inv.ShippingTaxAmount.IsZero() {
		t.Fatalf("with the rule: total %s shipping tax %s, want %s and 0", inv.TotalAmount, inv.ShippingTaxAmount, grand)
	}
}

// §17: an invoice without delivery_address gets its billing address copied in.
func TestSageDeliveryAddress(t *testing.T) {
	t.Parallel()
	s := newSageBusiness(t)
	_, inv := s.send(s.build("registered_customer"), func(b map[string]any) { delete(b, "delivery_address") })
	if inv.DeliveryAddress == nil || inv.DeliveryAddress.City == "York" {
		t.Fatalf("without the rule Sage should copy billing into delivery, got %+v", inv.DeliveryAddress)
	}

	s2 := newSageBusiness(t)
	status, inv := s2.send(s2.build("registered_customer"), nil)
	if status != http.StatusCreated && status != http.StatusOK {
		t.Fatalf("with the rule: status %d", status)
	}
	if inv.DeliveryAddress == nil || inv.DeliveryAddress.City != "York" || inv.MainAddress.City != "Leeds" {
		t.Fatalf("with the rule: main %+v delivery %+v", inv.MainAddress, inv.DeliveryAddress)
	}
	if !inv.TotalAmount.Equal(money.MustParse("39.18")) {
		t.Fatalf("total %s, want 39.18", inv.TotalAmount)
	}
}

// §7 and §22: lines without currency_tax_amount, or with entities, are refused.
func TestSageLineTaxAndDescription(t *testing.T) {
	t.Parallel()
	s := newSageBusiness(t)
	status, _ := s.send(s.build("html_entities"), func(b map[string]any) {
		for _, l := range b["invoice_lines"].([]any) {
			delete(l.(map[string]any), "currency_tax_amount")
		}
	})
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("without §7: status %d, want 422", status)
	}
	status, _ = s.send(s.build("html_entities"), func(b map[string]any) {
		b["invoice_lines"].([]any)[0].(map[string]any)["description"] = "Widget&trade; Pro"
	})
	if status != http.StatusUnprocessableEntity {
		t.Fatalf("without §22: status %d, want 422", status)
	}
	if status, inv := s.send(s.build("html_entities"), nil); status/100 != 2 || !inv.TotalAmount.Equal(money.MustParse("51.00")) {
		t.Fatalf("with the rules: status %d total %s", status, inv.TotalAmount)
	}
}
