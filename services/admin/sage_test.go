package admin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ledgersync/ledger/libs/policy"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/admin"
)

// get fetches u without following redirects and returns status, Location and body.
func (h *harness) get(t *testing.T, u string, header http.Header) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := h.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func TestSageOAuthFlowThroughHTTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "acme")
	auth := http.Header{"Authorization": {"Bearer " + testToken}}

	// start → Sage's authorization page.
	code, authorize, _ := h.get(t, h.http.URL+"/oauth/sage/start?tenant=acme", auth)
	if code != http.StatusFound || !strings.Contains(authorize, "/oauth2/auth/central") {
		t.Fatalf("start: %d Location %q", code, authorize)
	}
	au, _ := url.Parse(authorize)
	if got, want := au.Query().Get("redirect_uri"), h.http.URL+admin.CallbackPath; got != want {
		t.Fatalf("redirect_uri %q, want %q", got, want)
	}
	// The simulated user approves at once and is sent back to the callback.
	code, callback, body := h.get(t, authorize, nil)
	if code != http.StatusFound || !strings.HasPrefix(callback, h.http.URL+admin.CallbackPath) {
		t.Fatalf("authorize: %d Location %q %s", code, callback, body)
	}
	code, _, body = h.get(t, callback, nil)
	if code != http.StatusOK || !strings.Contains(body, "Sage is connected") {
		t.Fatalf("callback: %d\n%s", code, body)
	}

	ctx := t.Context()
	tn, err := h.st.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if tn.Binding.Status != store.StatusActive || tn.Binding.SageBusinessID != h.sage.LeadBusinessID() {
		t.Fatalf("binding: status %q business %q, want active %q", tn.Binding.Status, tn.Binding.SageBusinessID, h.sage.LeadBusinessID())
	}
	if tok, err := h.st.Tokens(ctx, "acme"); err != nil || tok.Access == "" || tok.Refresh == "" {
		t.Fatalf("tokens: %+v %v", tok, err)
	}
	var accounts []struct {
		ID          string `json:"id"`
		NominalCode int    `json:"nominal_code"`
	}
	for _, kind := range []string{admin.RefLedgerAccounts, admin.RefTaxRates, admin.RefBankAccounts} {
		doc, _, err := h.st.RefCache(ctx, "acme", kind)
		if err != nil {
			t.Fatalf("ref cache %s: %v", kind, err)
		}
		var items []json.RawMessage
		if err := json.Unmarshal(doc, &items); err != nil || len(items) == 0 {
			t.Fatalf("ref cache %s: %d items, %v: %s", kind, len(items), err, doc)
		}
		if kind == admin.RefLedgerAccounts {
			_ = json.Unmarshal(doc, &accounts)
		}
	}
	var salesID string
	for _, a := range accounts {
		if a.NominalCode == 4000 {
			salesID = a.ID
		}
	}
	doc, err := h.st.Policy(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(doc)
	if err != nil {
		t.Fatalf("stored policy: %v", err)
	}
	if p.DefaultLedgerAccountID == "" || p.DefaultLedgerAccountID != salesID {
		t.Errorf("default_ledger_account_id %q, want the 4000 account %q", p.DefaultLedgerAccountID, salesID)
	}
	if p.ZeroTaxRateID != "GB_ZERO" || p.DefaultTaxRateID != "GB_STANDARD" ||
		p.TaxRateMap["20.00"] != "GB_STANDARD" || p.TaxRateMap["5.00"] != "GB_LOWER" || p.TaxRateMap["0.00"] != "GB_ZERO" {
		t.Errorf("tax policy: zero %q default %q map %v", p.ZeroTaxRateID, p.DefaultTaxRateID, p.TaxRateMap)
	}

	gt, err := h.client.GetTenant(h.ctx(t), &ledgerv1.GetTenantRequest{TenantId: "acme"})
	if err != nil || gt.GetTenant().GetSageStatus() != "active" {
		t.Fatalf("GetTenant: %v %v", gt, err)
	}

	// The callback URL is single use.
	if code, _, body := h.get(t, callback, nil); code != http.StatusBadRequest || !strings.Contains(body, "no longer valid") {
		t.Fatalf("replayed callback: %d\n%s", code, body)
	}
}

func TestSageCallbackRejectsBadState(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, q := range []string{"?code=GB%2Fx&state=made-up&country=GB", "?code=GB%2Fx", ""} {
		code, _, body := h.get(t, h.http.URL+admin.CallbackPath+q, nil)
		if code != http.StatusBadRequest || !strings.Contains(body, "Start the connection again") {
			t.Errorf("callback%s: %d\n%s", q, code, body)
		}
	}
}

func TestSageCallbackExplainsDenial(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "deny")
	resp, err := h.client.StartSageConnect(h.ctx(t), &ledgerv1.StartSageConnectRequest{TenantId: "deny"})
	if err != nil {
		t.Fatal(err)
	}
	au, _ := url.Parse(resp.GetAuthorizeUrl())
	state := au.Query().Get("state")
	if len(state) < 40 {
		t.Fatalf("state %q is too short", state)
	}
	code, _, body := h.get(t, h.http.URL+admin.CallbackPath+"?error=access_denied&state="+url.QueryEscape(state), nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "access_denied") || !strings.Contains(body, "ledgerctl sage connect --tenant deny") {
		t.Fatalf("denied: %d\n%s", code, body)
	}
	// An unusable code: Sage answers invalid_grant.
	resp, _ = h.client.StartSageConnect(h.ctx(t), &ledgerv1.StartSageConnectRequest{TenantId: "deny"})
	au, _ = url.Parse(resp.GetAuthorizeUrl())
	code, _, body = h.get(t, h.http.URL+admin.CallbackPath+"?code=GB%2Fbogus&state="+url.QueryEscape(au.Query().Get("state")), nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "invalid_grant") {
		t.Fatalf("bad code: %d\n%s", code, body)
	}
	if tn, _ := h.st.Tenant(t.Context(), "deny"); tn.Binding.Status == store.StatusActive {
		t.Fatal("a failed callback activated the binding")
	}
}
