package admin_test

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/admin"
)

func TestGRPCRequiresOperatorToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for name, md := range map[string][]string{
		"missing":      nil,
		"wrong":        {"authorization", "Bearer not-the-token-at-all"},
		"wrong scheme": {"authorization", "Basic " + testToken},
		"bare token":   {"authorization", testToken},
	} {
		ctx := t.Context()
		if md != nil {
			ctx = metadata.AppendToOutgoingContext(ctx, md...)
		}
		_, err := h.client.ListTenants(ctx, &ledgerv1.ListTenantsRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s token: got %v, want Unauthenticated", name, err)
		}
		if err != nil && strings.Contains(err.Error(), testToken) {
			t.Errorf("%s token: the error echoes the token: %v", name, err)
		}
	}
	if _, err := h.client.ListTenants(h.ctx(t), &ledgerv1.ListTenantsRequest{}); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	// Health stays open for probes.
	hr, err := healthpb.NewHealthClient(h.conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: "ledger.v1.AdminService"})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health check: %v %v", hr, err)
	}
}

func TestHTTPOperatorRoutesRequireToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, path := range []string{"/dashboard", "/oauth/sage/start?tenant=x", "/dashboard?token=" + testToken} {
		resp, err := h.browser.Get(h.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// A browser without a session goes to the login page; ?token= only
		// logs in with LEDGER_ENV=dev (the harness runs prod).
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
			t.Errorf("GET %s without a header: %d Location %q, want 303 to /login", path, resp.StatusCode, loc)
		}
	}
	// A script with a wrong token gets 401, never the page nor the login form.
	if code, _, _ := h.get(t, h.http.URL+"/dashboard", http.Header{"Authorization": {"Bearer wrong-token-123456"}}); code != http.StatusUnauthorized {
		t.Errorf("wrong bearer token: %d, want 401", code)
	}
	for _, path := range []string{"/metrics", "/login"} {
		resp, err := h.browser.Get(h.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", path, resp.StatusCode)
		}
	}
}

func TestConfigRefusesDevWithoutToken(t *testing.T) {
	t.Parallel()
	base := admin.Config{Env: "dev", LedgerBaseURL: testLedgerURL}
	if _, err := admin.New(base, nil, telemetry.Discard()); err == nil || !strings.Contains(err.Error(), "ADMIN_INSECURE_DEV") {
		t.Fatalf("dev without ADMIN_TOKEN: got %v, want an error naming ADMIN_INSECURE_DEV", err)
	}
	insecure := base
	insecure.InsecureDev = true
	if err := insecure.WithDefaults().Validate(); err != nil {
		t.Fatalf("dev with ADMIN_INSECURE_DEV: %v", err)
	}
	prod := insecure
	prod.Env = "prod"
	if err := prod.WithDefaults().Validate(); err == nil {
		t.Fatal("prod with ADMIN_INSECURE_DEV was accepted")
	}
	noBase := admin.Config{AdminToken: secrets.String(testToken)}
	if err := noBase.WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), "LEDGER_BASE_URL") {
		t.Fatalf("missing LEDGER_BASE_URL: got %v", err)
	}
	if s := (admin.Config{AdminToken: secrets.String(testToken)}).LogValue().String(); strings.Contains(s, testToken) || !strings.Contains(s, "[redacted]") {
		t.Fatalf("Config.LogValue leaks the token: %s", s)
	}
}

func TestDevBrowserTokenBecomesCookie(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *admin.Config) { c.Env = "dev" })
	code, loc, _ := h.get(t, h.http.URL+"/dashboard?status=failed&token="+testToken, nil)
	if code != http.StatusSeeOther || loc != "/dashboard?status=failed" {
		t.Fatalf("?token=: %d Location %q", code, loc)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, h.http.URL+"/dashboard?token="+testToken, nil)
	resp, err := h.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly {
		t.Fatalf("cookies %v", cookies)
	}
	code, _, body := h.get(t, h.http.URL+"/dashboard", http.Header{"Cookie": {cookies[0].String()}})
	if code != http.StatusOK || !strings.Contains(body, "<h1>Tenants</h1>") {
		t.Fatalf("with the cookie: %d", code)
	}
	if code, loc, _ := h.get(t, h.http.URL+"/dashboard?token=wrong-token-123456", nil); code != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Fatalf("wrong ?token=: %d", code)
	}
}
