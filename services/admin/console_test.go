package admin_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ledgersync/ledger/libs/secrets"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/admin"
)

// consoleBrowser is a cookie-keeping client of the console that does not
// follow redirects.
type consoleBrowser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newConsoleBrowser(t *testing.T, h *harness) *consoleBrowser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &consoleBrowser{t: t, base: h.http.URL, c: &http.Client{Timeout: 10 * time.Second, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *consoleBrowser) do(method, path string, form url.Values, header http.Header) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.t.Context(), method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf is the form token of a rendered page.
func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%s", body)
	}
	return m[1]
}

// login logs the browser in through the login form and returns the
// session's form token.
func (b *consoleBrowser) login(token string) string {
	b.t.Helper()
	_, page := b.do(http.MethodGet, "/login?next=/tenants", nil, nil)
	resp, body := b.do(http.MethodPost, "/login", url.Values{"csrf": {csrfOf(b.t, page)}, "token": {token}, "next": {"/tenants"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/tenants" {
		b.t.Fatalf("login: %d Location %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, body = b.do(http.MethodGet, "/tenants", nil, nil)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("tenants after login: %d\n%s", resp.StatusCode, body)
	}
	return csrfOf(b.t, body)
}

func TestConsoleLoginCSRFAndLogout(t *testing.T) {
	t.Parallel()
	// dev: plain-http cookies (prod marks them Secure, checked below).
	h := newHarness(t, func(c *admin.Config) { c.Env = "dev" })
	b := newConsoleBrowser(t, h)

	// A wrong token is refused with the field named; nothing is logged in.
	_, page := b.do(http.MethodGet, "/login", nil, nil)
	resp, body := b.do(http.MethodPost, "/login", url.Values{"csrf": {csrfOf(t, page)}, "token": {"not-the-token-at-all"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "token: not the operator credential") || strings.Contains(body, testToken) {
		t.Fatalf("wrong token: %d\n%s", resp.StatusCode, body)
	}
	// A login form without its token (cross-site login) is refused.
	resp, _ = b.do(http.MethodPost, "/login", url.Values{"csrf": {"forged"}, "token": {testToken}}, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged login form: %d", resp.StatusCode)
	}

	csrf := b.login(testToken)
	var session *http.Cookie
	u, _ := url.Parse(h.http.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "ledger_console" {
			session = c
		}
	}
	if session == nil || len(session.Value) < 40 || session.Value == testToken {
		t.Fatalf("session cookie %v", session)
	}

	// Forged, missing and cross-origin form tokens: 403, still logged in.
	for name, tc := range map[string]struct {
		form   url.Values
		header http.Header
	}{
		"forged":       {url.Values{"csrf": {"x" + csrf}}, nil},
		"missing":      {url.Values{}, nil},
		"cross-origin": {url.Values{"csrf": {csrf}}, http.Header{"Origin": {"https://evil.example"}}},
		"cross-site":   {url.Values{"csrf": {csrf}}, http.Header{"Sec-Fetch-Site": {"cross-site"}}},
	} {
		resp, body := b.do(http.MethodPost, "/logout", tc.form, tc.header)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "nothing was changed") {
			t.Fatalf("%s: %d\n%s", name, resp.StatusCode, body)
		}
		if resp, _ := b.do(http.MethodGet, "/dashboard", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("after a %s logout: the session ended (%d)", name, resp.StatusCode)
		}
	}

	// Logout with the token ends the session.
	resp, _ = b.do(http.MethodPost, "/logout", url.Values{"csrf": {csrf}}, http.Header{"Origin": {h.http.URL}, "Sec-Fetch-Site": {"same-origin"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b.do(http.MethodGet, "/dashboard", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
	// The old cookie is dead server-side too.
	if code, _, _ := h.get(t, h.http.URL+"/dashboard", http.Header{"Cookie": {session.Name + "=" + session.Value}}); code != http.StatusSeeOther {
		t.Fatalf("replayed session cookie after logout: %d", code)
	}
	// A POST without a session is refused, not redirected.
	if resp, _ := b.do(http.MethodPost, "/logout", url.Values{"csrf": {csrf}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST without a session: %d", resp.StatusCode)
	}
}

func TestConsoleCookiesAreSecureOutsideDev(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := newConsoleBrowser(t, h)
	_, page := b.do(http.MethodGet, "/login", nil, nil)
	resp, _ := b.do(http.MethodPost, "/login", url.Values{"csrf": {csrfOf(t, page)}, "token": {testToken}}, nil)
	var found bool
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-ledger_console" {
			found = true
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge <= 0 || c.MaxAge > 12*3600 {
				t.Fatalf("session cookie attributes: %+v", c)
			}
		}
	}
	if resp.StatusCode != http.StatusSeeOther || !found {
		t.Fatalf("login: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
}

func TestConsoleScriptsUseTheBearerToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "scripted")
	code, _, body := h.get(t, h.http.URL+"/tenants", http.Header{"Authorization": {"Bearer " + testToken}})
	if code != http.StatusOK || !strings.Contains(body, "scripted") {
		t.Fatalf("tenants with a bearer token: %d\n%s", code, body)
	}
}

func TestConsoleNextStaysOnSite(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *admin.Config) { c.Env = "dev" })
	for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"} {
		b := newConsoleBrowser(t, h)
		_, page := b.do(http.MethodGet, "/login", nil, nil)
		resp, _ := b.do(http.MethodPost, "/login", url.Values{"csrf": {csrfOf(t, page)}, "token": {testToken}, "next": {next}}, nil)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/dashboard" {
			t.Fatalf("next=%q: %d Location %q", next, resp.StatusCode, loc)
		}
	}
}

func TestConsoleCreateTenantAndDisconnect(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *admin.Config) { c.Env = "dev" })
	b := newConsoleBrowser(t, h)
	csrf := b.login(testToken)

	// A forged token creates nothing.
	resp, _ := b.do(http.MethodPost, "/tenants", url.Values{"csrf": {"forged"}, "name": {"Forged"}, "tenant_id": {"forged"}}, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged create: %d", resp.StatusCode)
	}
	if _, err := h.st.Tenant(t.Context(), "forged"); err == nil {
		t.Fatal("a forged form created a tenant")
	}
	// A bad id is shown next to its field, the values kept and escaped.
	resp, body := b.do(http.MethodPost, "/tenants", url.Values{"csrf": {csrf}, "name": {"<b>Shop</b>"}, "tenant_id": {"bad id!"}}, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="tenant_id-error"`) || !strings.Contains(body, "&lt;b&gt;Shop&lt;/b&gt;") {
		t.Fatalf("bad tenant id: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = b.do(http.MethodPost, "/tenants", url.Values{"csrf": {csrf}, "name": {"Console shop"}, "tenant_id": {"console-shop"}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/tenants/console-shop" {
		t.Fatalf("create: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = b.do(http.MethodGet, "/tenants/console-shop", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Tenant console-shop created") || !strings.Contains(body, "Connect the shop") ||
		!strings.Contains(body, "Connect Sage") {
		t.Fatalf("tenant page: %d\n%s", resp.StatusCode, body)
	}

	// Pairing errors are shown as ConnectMagento reports them, by field.
	resp, body = b.do(http.MethodPost, "/tenants/console-shop/connect/magento", url.Values{"csrf": {csrf}, "shop_url": {"not a url"}, "pairing_code": {"x"}}, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="shop_url-error">shop_url must be an absolute http(s) URL`) {
		t.Fatalf("bad shop url: %d\n%s", resp.StatusCode, body)
	}

	// Sage connect sends the browser to Sage's authorization page.
	resp, _ = b.do(http.MethodPost, "/tenants/console-shop/connect/sage", url.Values{"csrf": {csrf}}, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "state=") {
		t.Fatalf("sage connect: %d %q", resp.StatusCode, loc)
	}

	// Disconnect asks first, naming the tenant.
	resp, body = b.do(http.MethodGet, "/tenants/console-shop/disconnect/magento", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "console-shop") || !strings.Contains(body, "Console shop") {
		t.Fatalf("disconnect confirmation: %d\n%s", resp.StatusCode, body)
	}
	resp, _ = b.do(http.MethodPost, "/tenants/console-shop/disconnect/magento", url.Values{"csrf": {csrf}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disconnect: %d", resp.StatusCode)
	}
	if tn, err := h.st.Tenant(t.Context(), "console-shop"); err != nil || tn.Binding.MagentoConnectionStatus != "revoked" {
		t.Fatalf("after disconnect: %+v %v", tn.Binding, err)
	}
	if resp, _ := b.do(http.MethodGet, "/tenants/nobody", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown tenant: %d", resp.StatusCode)
	}
}

func TestConsolePolicyForm(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *admin.Config) { c.Env = "dev" })
	h.createTenant(t, "pol")
	ctx := t.Context()
	for kind, doc := range map[string]string{
		"ledger_accounts": `[{"id":"L4000","displayed_as":"Sales Type A (4000)"},{"id":"L4010","displayed_as":"Sales <b>B</b> (4010)"}]`,
		"tax_rates":       `[{"id":"GB_STANDARD","displayed_as":"Standard 20.00%"},{"id":"GB_LOWER","displayed_as":"Lower 5.00%"},{"id":"GB_ZERO","displayed_as":"Zero 0.00%"}]`,
		"bank_accounts":   `[{"id":"BANK1","displayed_as":"Current (1200)"}]`,
		"payment_methods": `[{"id":"CREDIT_DEBIT","displayed_as":"Credit/Debit Card"}]`,
	} {
		if err := h.st.SetRefCache(ctx, "pol", kind, []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.st.SetPolicy(ctx, "pol", []byte(`{"default_ledger_account_id":"L4000","invoice_number_prefix":"WEB"}`)); err != nil {
		t.Fatal(err)
	}
	b := newConsoleBrowser(t, h)
	csrf := b.login(testToken)
	resp, body := b.do(http.MethodGet, "/tenants/pol/policy", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<option value="L4000" selected>Sales Type A (4000) — L4000</option>`) ||
		!strings.Contains(body, "Sales &lt;b&gt;B&lt;/b&gt;") || !strings.Contains(body, `value="20.00"`) {
		t.Fatalf("policy page: %d\n%s", resp.StatusCode, body)
	}

	form := url.Values{"csrf": {csrf}, "default_ledger_account_id": {"STALE"}, "default_tax_rate_id": {"GB_STANDARD"}, "zero_tax_rate_id": {"GB_ZERO"},
		"tax_rate_map.key": {"20.00", "5", ""}, "tax_rate_map.value": {"GB_STANDARD", "GB_LOWER", ""},
		"payment_method_map.key": {"checkmo"}, "payment_method_map.value": {"BANK1"},
		"sync_unpaid_invoices": {"on"}, "website_filter": {"1, x"}, "b2c_enabled": {"on"}, "b2c_threshold": {"50.00"}}
	// A field the form reads itself is refused before SetPolicy.
	resp, body = b.do(http.MethodPost, "/tenants/pol/policy", form, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `website_filter: &#34;x&#34; is not a Magento id`) {
		t.Fatalf("bad website filter: %d\n%s", resp.StatusCode, body)
	}
	// SetPolicy's errors are shown next to the fields they name: the shape
	// first (libs/policy), then the Sage ids.
	form.Set("website_filter", "1")
	resp, body = b.do(http.MethodPost, "/tenants/pol/policy", form, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `data-field="tax_rate_map[&#34;5&#34;]"`) ||
		!strings.Contains(body, `tax_rate_map key &#34;5&#34;: use a percentage`) {
		t.Fatalf("SetPolicy shape error: %d\n%s", resp.StatusCode, body)
	}
	form["tax_rate_map.key"] = []string{"20.00", "5.00", ""}
	resp, body = b.do(http.MethodPost, "/tenants/pol/policy", form, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="default_ledger_account_id-error" role="alert">default_ledger_account_id &#34;STALE&#34; is not a sales-visible ledger account`) ||
		!strings.Contains(body, `<option value="STALE" selected>STALE (not in the Sage business)</option>`) {
		t.Fatalf("SetPolicy reference error: %d\n%s", resp.StatusCode, body)
	}
	if doc, _ := h.st.Policy(ctx, "pol"); strings.Contains(string(doc), "STALE") {
		t.Fatalf("a refused policy was stored: %s", doc)
	}
	form.Set("default_ledger_account_id", "L4010")
	resp, body = b.do(http.MethodPost, "/tenants/pol/policy", form, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("valid policy: %d\n%s", resp.StatusCode, body)
	}
	got, err := h.client.GetPolicy(h.ctx(t), &ledgerv1.GetPolicyRequest{TenantId: "pol"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"default_ledger_account_id": "L4010"`, `"invoice_number_prefix": "WEB"`, `"checkmo": "BANK1"`, `"website_filter": [`, `"threshold": "50.00"`} {
		if !strings.Contains(got.GetPolicyJson(), want) {
			t.Errorf("stored policy lacks %s:\n%s", want, got.GetPolicyJson())
		}
	}
	if _, body := b.do(http.MethodGet, "/tenants/pol/policy", nil, nil); !strings.Contains(body, "Policy saved") {
		t.Fatalf("no flash after saving:\n%s", body)
	}
	// The raw JSON fallback reports errors too.
	resp, body = b.do(http.MethodPost, "/tenants/pol/policy/json", url.Values{"csrf": {csrf}, "policy_json": {`{"colour":"red"}`}}, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="raw-errors"`) || !strings.Contains(body, "colour") {
		t.Fatalf("raw JSON error: %d\n%s", resp.StatusCode, body)
	}
}

func TestConsoleOperatorPassword(t *testing.T) {
	t.Parallel()
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse battery"), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *admin.Config) { c.Env = "dev"; c.OperatorPasswordHash = secrets.String(hash) })
	b := newConsoleBrowser(t, h)
	b.login("correct horse battery")

	// The token still logs in; a wrong password does not.
	newConsoleBrowser(t, h).login(testToken)
	wrong := newConsoleBrowser(t, h)
	_, page := wrong.do(http.MethodGet, "/login", nil, nil)
	resp, body := wrong.do(http.MethodPost, "/login", url.Values{"csrf": {csrfOf(t, page)}, "token": {"correct horse"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, string(hash)) {
		t.Fatalf("wrong password: %d\n%s", resp.StatusCode, body)
	}
	// Online guessing stops after 10 failures a minute, even for the right one.
	for range 9 {
		_, page = wrong.do(http.MethodGet, "/login", nil, nil)
		wrong.do(http.MethodPost, "/login", url.Values{"csrf": {csrfOf(t, page)}, "token": {"guess"}}, nil)
	}
	_, page = wrong.do(http.MethodGet, "/login", nil, nil)
	if resp, _ := wrong.do(http.MethodPost, "/login", url.Values{"csrf": {csrfOf(t, page)}, "token": {"correct horse battery"}}, nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the 11th login in a minute: %d, want 429", resp.StatusCode)
	}

	// The hash is checked at start and never printed.
	for bad, want := range map[string]string{"plaintext": "not a bcrypt hash", string(mustHash(t, 4)): "cost 4 is too low"} {
		cfg := admin.Config{AdminToken: secrets.String(testToken), LedgerBaseURL: testLedgerURL, OperatorPasswordHash: secrets.String(bad)}
		if err := cfg.WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), "ADMIN_OPERATOR_PASSWORD_HASH: ") || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), bad) {
			t.Errorf("hash %q: %v", bad, err)
		}
	}
	if s := (admin.Config{OperatorPasswordHash: secrets.String(hash)}).LogValue().String(); strings.Contains(s, string(hash)) {
		t.Fatalf("Config.LogValue leaks the hash: %s", s)
	}
}

func mustHash(t *testing.T, cost int) []byte {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("x"), cost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
