package sagesim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"

	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// Example walks the OAuth code flow against the simulator and reads the lead
// business, as Ledger does against Sage.
func Example() {
	sim := sagesim.New(sagesim.Config{Seed: 1})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// 1. The user approves at once; the callback carries the code.
	resp, _ := client.Get(srv.URL + "/oauth2/auth/central?" + url.Values{
		"client_id": {sagesim.DefaultClientID}, "redirect_uri": {"http://localhost/cb"},
		"response_type": {"code"}, "state": {"s1"}}.Encode())
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))

	// 2. Exchange the code.
	resp, _ = client.PostForm(srv.URL+"/token", url.Values{
		"client_id": {sagesim.DefaultClientID}, "client_secret": {sagesim.DefaultClientSecret},
		"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {"http://localhost/cb"}})
	var tok sagesim.TokenResponse
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()

	// 3. Call the API; X-Business is echoed.
	req, _ := http.NewRequest("GET", srv.URL+"/v3.1/contacts", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, _ = client.Do(req)
	resp.Body.Close()

	fmt.Println(loc.Query().Get("country"), loc.Query().Get("state"), tok.TokenType, tok.ExpiresIn)
	fmt.Println(resp.StatusCode, resp.Header.Get("X-Business") == sim.LeadBusinessID())
	// Output:
	// GB s1 bearer 300
	// 200 true
}
