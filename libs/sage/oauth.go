package sage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/ledgersync/ledger/libs/telemetry"
)

// Endpoints are the Sage hosts. The official values serve every region; the
// simulator serves the same paths on one origin.
type Endpoints struct {
	AuthURL   string // authorization page
	TokenURL  string // code exchange and refresh
	RevokeURL string
	APIURL    string // base of /v3.1 resources, without a trailing slash
}

// Official returns Sage's production endpoints.
func Official() Endpoints {
	return Endpoints{
		AuthURL:   "https://www.sageone.com/oauth2/auth/central?filter=apiv3.1",
		TokenURL:  "https://oauth.accounting.sage.com/token",
		RevokeURL: "https://oauth.accounting.sage.com/revoke",
		APIURL:    "https://api.accounting.sage.com/v3.1",
	}
}

// OrOfficial fills the endpoints left empty with Sage's official ones.
func (e Endpoints) OrOfficial() Endpoints {
	off := Official()
	for _, f := range []struct {
		v   *string
		def string
	}{
		{&e.AuthURL, off.AuthURL}, {&e.TokenURL, off.TokenURL}, {&e.RevokeURL, off.RevokeURL}, {&e.APIURL, off.APIURL},
	} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	return e
}

// At returns endpoints for a server that serves Sage's paths under origin (the
// simulator: origin/oauth2/auth/central, origin/token, origin/revoke, origin/v3.1).
func At(origin string) Endpoints {
	o := strings.TrimRight(origin, "/")
	return Endpoints{
		AuthURL:   o + "/oauth2/auth/central?filter=apiv3.1",
		TokenURL:  o + "/token",
		RevokeURL: o + "/revoke",
		APIURL:    o + "/v3.1",
	}
}

// OAuth holds the app registration and knows the token endpoints.
type OAuth struct {
	Endpoints    Endpoints
	ClientID     string
	ClientSecret string
	RedirectURL  string
	HTTP         *http.Client
}

func (o OAuth) config() *oauth2.Config {
	return &oauth2.Config{
		ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURL: o.RedirectURL,
		Scopes: []string{"full_access"},
		Endpoint: oauth2.Endpoint{
			AuthURL: o.Endpoints.AuthURL, TokenURL: o.Endpoints.TokenURL,
			// Sage reads the client credentials from the form body.
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

func (o OAuth) ctx(ctx context.Context) context.Context {
	ctx = telemetry.WithPeer(ctx, telemetry.PeerSage)
	hc := o.HTTP
	if hc == nil {
		hc = defaultHTTP()
	}
	return context.WithValue(ctx, oauth2.HTTPClient, hc)
}

// AuthCodeURL is the URL to send the user to; state guards the callback.
func (o OAuth) AuthCodeURL(state string) string {
	return o.config().AuthCodeURL(state)
}

// Token is a token pair as Ledger stores it.
type Token struct {
	Access           string
	Refresh          string
	AccessExpiresAt  time.Time
	RefreshExpiresAt time.Time
	Scope            string
	RequestedByID    string
}

// ErrInvalidGrant means Sage refused the code or refresh token (expired, revoked
// or already used): the binding needs a new authorization.
var ErrInvalidGrant = errors.New("sage: invalid_grant: the authorization is no longer valid; reconnect Sage")

// Exchange trades an authorization code for tokens.
func (o OAuth) Exchange(ctx context.Context, code string) (Token, error) {
	t, err := o.config().Exchange(o.ctx(ctx), code)
	return convert(t, err)
}

// Refresh trades a refresh token for a new pair (the old refresh token is then
// dead: store the new one before using the new access token).
func (o OAuth) Refresh(ctx context.Context, refresh string) (Token, error) {
	t, err := o.config().TokenSource(o.ctx(ctx), &oauth2.Token{RefreshToken: refresh, Expiry: time.Unix(1, 0)}).Token()
	return convert(t, err)
}

func convert(t *oauth2.Token, err error) (Token, error) {
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return Token{}, fmt.Errorf("%w (%s)", ErrInvalidGrant, re.ErrorDescription)
		}
		return Token{}, fmt.Errorf("sage: token endpoint: %w", err)
	}
	out := Token{Access: t.AccessToken, Refresh: t.RefreshToken, AccessExpiresAt: t.Expiry}
	if out.AccessExpiresAt.IsZero() {
		out.AccessExpiresAt = time.Now().Add(5 * time.Minute)
	}
	out.RefreshExpiresAt = time.Now().Add(31 * 24 * time.Hour)
	if s := seconds(t.Extra("refresh_token_expires_in")); s > 0 {
		// Capped so a huge value cannot overflow time.Duration into the past
		// (which would mark a fresh binding expired).
		out.RefreshExpiresAt = time.Now().Add(time.Duration(min(s, maxRefreshLifetime)) * time.Second)
	}
	if s, ok := t.Extra("scope").(string); ok {
		out.Scope = s
	}
	if s, ok := t.Extra("requested_by_id").(string); ok {
		out.RequestedByID = s
	}
	return out, nil
}

// maxRefreshLifetime caps refresh_token_expires_in at a year (Sage grants
// 31 days).
const maxRefreshLifetime = 366 * 24 * 3600

func seconds(v any) int64 {
	switch n := v.(type) {
	case float64: // encoding/json's number type inside oauth2's Extra map; not money
		if !(n < maxRefreshLifetime) { // also NaN
			return maxRefreshLifetime
		}
		return int64(n)
	case string:
		var i int64
		_, _ = fmt.Sscan(n, &i)
		return i
	}
	return 0
}

// Revoke revokes a refresh token (access tokens cannot be revoked; they lapse
// within five minutes).
func (o OAuth) Revoke(ctx context.Context, refresh string) error {
	form := url.Values{"client_id": {o.ClientID}, "client_secret": {o.ClientSecret}, "token": {refresh}}
	req, err := http.NewRequestWithContext(telemetry.WithPeer(ctx, telemetry.PeerSage), http.MethodPost, o.Endpoints.RevokeURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	hc := o.HTTP
	if hc == nil {
		hc = defaultHTTP()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("sage: revoke: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("sage: revoke answered HTTP %d", resp.StatusCode)
	}
	return nil
}
