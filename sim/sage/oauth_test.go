package sagesim

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestOAuthCodeFlowWithRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})

	q := url.Values{"client_id": {DefaultClientID}, "redirect_uri": {testRedirect}, "response_type": {"code"},
		"scope": {"full_access"}, "state": {"st-1"}, "filter": {"apiv3.1"}}
	resp, err := e.http.Get(e.srv.URL + "/oauth2/auth/central?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize status %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, testRedirect+"?code=GB%2F") || !strings.Contains(loc, "&country=GB&state=st-1") {
		t.Fatalf("redirect %q", loc)
	}
	u, _ := url.Parse(loc)
	tok := e.exchangeOK(u.Query().Get("code"))
	if tok.TokenType != "bearer" || tok.Scope != "full_access" || tok.ExpiresIn != 300 ||
		tok.RefreshTokenExpiresIn != 2678400 || tok.AccessToken == "" || tok.RefreshToken == "" || tok.RequestedByID == "" {
		t.Fatalf("token response %+v", tok)
	}
	e.access = tok.AccessToken
	e.expect(http.StatusOK, "GET", "/businesses/lead", nil)

	// Refresh rotates: the new pair works, the old refresh token is dead.
	status, body := e.refreshWith(tok.RefreshToken)
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %s", status, body)
	}
	var next TokenResponse
	mustJSON(t, body, &next)
	if next.RefreshToken == tok.RefreshToken || next.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate the tokens")
	}
	status, body = e.refreshWith(tok.RefreshToken)
	var oe oauthError
	mustJSON(t, body, &oe)
	if status != http.StatusBadRequest || oe.Error != "invalid_grant" || oe.Description == "" {
		t.Fatalf("reused refresh token: %d %s", status, body)
	}
	if status, body := e.refreshWith(next.RefreshToken); status != http.StatusOK {
		t.Fatalf("rotated refresh token: %d %s", status, body)
	}
	// Access tokens cannot be revoked: the first one still works until it expires.
	e.expect(http.StatusOK, "GET", "/contacts", nil)
}

func TestAuthorizationCodeIsSingleUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	code := e.authorize(DefaultClientID, testRedirect, "", "")
	e.exchangeOK(code)
	status, body := e.exchange(code)
	if status != http.StatusBadRequest || !strings.Contains(string(body), `"error":"invalid_grant"`) {
		t.Fatalf("second exchange: %d %s", status, body)
	}
}

func TestAuthorizationCodeExpiresAfter60Seconds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	fresh := e.authorize(DefaultClientID, testRedirect, "", "")
	stale := e.authorize(DefaultClientID, testRedirect, "", "")
	e.sim.Advance(59 * time.Second)
	e.exchangeOK(fresh)
	e.sim.Advance(time.Second)
	status, body := e.exchange(stale)
	if status != http.StatusBadRequest || !strings.Contains(string(body), `"error":"invalid_grant"`) {
		t.Fatalf("expired code: %d %s", status, body)
	}
}

func TestAuthorizeValidatesClientAndRedirect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{NoDefaultClient: true, Clients: []Client{{ID: "shop", Secret: "s3cret", RedirectURIs: []string{testRedirect}}}})
	get := func(q url.Values) *http.Response {
		resp, err := e.http.Get(e.srv.URL + "/oauth2/auth/central?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get(url.Values{"client_id": {DefaultClientID}, "redirect_uri": {testRedirect}, "response_type": {"code"}}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("unregistered default client: %d", r.StatusCode)
	}
	if r := get(url.Values{"client_id": {"shop"}, "redirect_uri": {"https://evil.example/cb"}, "response_type": {"code"}}); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("foreign redirect: %d", r.StatusCode)
	}
	r := get(url.Values{"client_id": {"shop"}, "redirect_uri": {testRedirect}, "response_type": {"token"}, "state": {"s"}})
	if r.StatusCode != http.StatusFound || !strings.Contains(r.Header.Get("Location"), "error=unsupported_response_type") {
		t.Fatalf("response_type=token: %d %s", r.StatusCode, r.Header.Get("Location"))
	}
	code := e.authorize("shop", testRedirect, "", "")
	// HTTP Basic client authentication is accepted too.
	req, _ := http.NewRequest("POST", e.srv.URL+"/token", strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("shop", "s3cret")
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("basic auth exchange: %d", resp.StatusCode)
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	code := e.authorize(DefaultClientID, testRedirect, "", "")
	cases := []struct {
		name string
		form url.Values
		want string
	}{
		{"bad secret", url.Values{"client_id": {DefaultClientID}, "client_secret": {"nope"}, "grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}}, "invalid_client"},
		{"unsupported grant", url.Values{"client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret}, "grant_type": {"client_credentials"}}, "unsupported_grant_type"},
		{"missing code", url.Values{"client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret}, "grant_type": {"authorization_code"}}, "invalid_request"},
		{"redirect mismatch", url.Values{"client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret}, "grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect + "x"}}, "invalid_grant"},
		{"unknown refresh", url.Values{"client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret}, "grant_type": {"refresh_token"}, "refresh_token": {"nope"}}, "invalid_grant"},
	}
	for _, c := range cases {
		status, body := e.postForm("/token", c.form)
		var oe oauthError
		mustJSON(t, body, &oe)
		if status != http.StatusBadRequest || oe.Error != c.want {
			t.Errorf("%s: %d %s, want 400 %s", c.name, status, body, c.want)
		}
	}
	// The code survived the failed attempts above (none of them consumed it).
	e.exchangeOK(code)
}

func TestAccessTokenExpiresAfter300Seconds(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	e.sim.Advance(299 * time.Second)
	e.expect(http.StatusOK, "GET", "/contacts", nil)
	e.sim.Advance(time.Second)
	errs := errorsOf(t, e.expect(http.StatusUnauthorized, "GET", "/contacts", nil))
	if len(errs) != 1 || errs[0].DataCode != CodeAuthorizationFailure || errs[0].Severity != "error" {
		t.Fatalf("errors %+v", errs)
	}
	status, body := e.refreshWith(e.refresh)
	if status != http.StatusOK {
		t.Fatalf("refresh after expiry: %d %s", status, body)
	}
}

func TestMissingOrUnknownTokenIs401(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	e.expect(http.StatusUnauthorized, "GET", "/contacts", nil)
	e.access = "not-a-token"
	body := e.expect(http.StatusUnauthorized, "GET", "/contacts", nil)
	if !strings.Contains(string(body), `"$dataCode":"AuthorizationFailure"`) {
		t.Fatalf("body %s", body)
	}
}

func TestRevokeAndTestHelpers(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	status, body := e.postForm("/revoke", url.Values{"client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret}, "token": {e.refresh}})
	if status != http.StatusOK || string(body) != `{"success":"ok"}` {
		t.Fatalf("revoke: %d %s", status, body)
	}
	if status, _ := e.refreshWith(e.refresh); status != http.StatusBadRequest {
		t.Fatalf("revoked refresh: %d", status)
	}
	e.expect(http.StatusOK, "GET", "/contacts", nil) // access token outlives revocation

	e2 := loggedIn(t, Config{})
	e2.sim.ExpireAccessTokens()
	e2.expect(http.StatusUnauthorized, "GET", "/contacts", nil)
	e2.sim.RevokeRefreshTokens()
	if status, _ := e2.refreshWith(e2.refresh); status != http.StatusBadRequest {
		t.Fatalf("RevokeRefreshTokens: %d", status)
	}
}

// TestOAuthLifecycle drives one connection through a code exchange, rotations,
// access-token expiry mid-run, a transient token-endpoint failure, refresh
// token expiry after 31 days and revocation.
func TestOAuthLifecycle(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	e.expect(http.StatusOK, "GET", "/contacts", nil)

	// Rotation: three refreshes in a row, each invalidating its predecessor.
	for i := range 3 {
		old := e.refresh
		e.access = e.refreshed()
		if status, body := e.refreshWith(old); status != http.StatusBadRequest || !strings.Contains(string(body), "invalid_grant") {
			t.Fatalf("rotation %d: old token %d %s", i, status, body)
		}
	}
	// Expiry mid-run: the fault and the 300 s lifetime both give 401, then a
	// refresh recovers.
	e.sim.ExpireAccessTokens()
	e.expect(http.StatusUnauthorized, "GET", "/contacts", nil)
	e.access = e.refreshed()
	e.sim.Advance(301 * time.Second)
	e.expect(http.StatusUnauthorized, "GET", "/contacts", nil)
	// A 500 on the token endpoint consumes nothing; the retry succeeds.
	if err := e.sim.SetFaults(Faults{TokenServerErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	if status, _ := e.refreshWith(e.refresh); status != http.StatusInternalServerError {
		t.Fatalf("token fault: %d", status)
	}
	if err := e.sim.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	e.access = e.refreshed()
	e.expect(http.StatusOK, "GET", "/contacts", nil)
	// An idle refresh token dies after 31 days.
	e.sim.Advance(31*24*time.Hour + time.Second)
	if status, body := e.refreshWith(e.refresh); status != http.StatusBadRequest || !strings.Contains(string(body), "expired") {
		t.Fatalf("31-day expiry: %d %s", status, body)
	}
	// Reconnect, then the user revokes the app.
	tok := e.exchangeOK(e.authorize(DefaultClientID, testRedirect, "again", ""))
	e.access, e.refresh = tok.AccessToken, tok.RefreshToken
	e.expect(http.StatusOK, "GET", "/contacts", nil)
	e.sim.RevokeRefreshTokens()
	if status, body := e.refreshWith(e.refresh); status != http.StatusBadRequest || !strings.Contains(string(body), "revoked") {
		t.Fatalf("revoked: %d %s", status, body)
	}
}
