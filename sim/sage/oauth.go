package sagesim

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Lifetimes from Sage's authentication guide.
const (
	authCodeTTL     = 60 * time.Second
	accessTokenTTL  = 300 * time.Second
	refreshTokenTTL = 2678400 * time.Second // 31 days
)

// grant is what a code or a token carries: which user approved which client
// for what scope, until when. Codes and refresh tokens are single use.
type grant struct {
	userName, clientID, scope string
	expiresAt                 time.Time
	used, revoked             bool
}

// authCode is an authorization code: a grant for one redirect URI, with the
// PKCE challenge it was asked with.
type authCode struct {
	grant
	redirectURI, challenge, challengeMeth string
}

// TokenResponse is the JSON body of a successful POST /token.
type TokenResponse struct {
	AccessToken           string `json:"access_token"`
	Scope                 string `json:"scope"`
	TokenType             string `json:"token_type"`
	ExpiresIn             int    `json:"expires_in"`
	RefreshToken          string `json:"refresh_token"`
	RefreshTokenExpiresIn int    `json:"refresh_token_expires_in"`
	RequestedByID         string `json:"requested_by_id"`
}

// oauthError is the token endpoint's error shape, unlike the API's error array.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func writeOAuthError(w http.ResponseWriter, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusBadRequest, oauthError{Error: code, Description: description})
}

// handleAuthorize is Sage's authorization endpoint. The simulated user approves
// at once, so it answers with the redirect to the client's callback. The
// simulator-only parameter sim_user names the Sage user who approves (created on
// first use with the configured businesses); without it the default user does.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	client, ok := s.clients[q.Get("client_id")]
	if !ok {
		writeOAuthError(w, "invalid_client", "Unknown client_id.")
		return
	}
	redirect := q.Get("redirect_uri")
	target, err := url.Parse(redirect)
	if redirect == "" || err != nil || !target.IsAbs() {
		writeOAuthError(w, "invalid_request", "redirect_uri is missing or not an absolute URL.")
		return
	}
	if len(client.RedirectURIs) > 0 && !slices.Contains(client.RedirectURIs, redirect) {
		writeOAuthError(w, "invalid_request", "The redirect_uri does not match a registered callback URL.")
		return
	}
	values := target.Query()
	if state := q.Get("state"); state != "" {
		values.Set("state", state)
	}
	fail := func(code string) {
		values.Set("error", code)
		target.RawQuery = values.Encode()
		http.Redirect(w, r, target.String(), http.StatusFound)
	}
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type")
		return
	}
	scope := q.Get("scope")
	switch scope {
	case "":
		scope = "full_access"
	case "readonly", "full_access":
	default:
		fail("invalid_scope")
		return
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	if challenge != "" && method == "" {
		method = "plain"
	}
	if challenge != "" && method != "plain" && method != "S256" {
		fail("invalid_request")
		return
	}
	name := q.Get("sim_user")
	if name == "" {
		name = defaultUser
	}
	code := "GB/" + secret(20)
	now := s.Now()
	s.mu.Lock()
	s.userLocked(name, false)
	s.codes[code] = &authCode{grant: grant{userName: name, clientID: client.ID, scope: scope, expiresAt: now.Add(authCodeTTL)},
		redirectURI: redirect, challenge: challenge, challengeMeth: method}
	s.mu.Unlock()
	values.Set("code", code)
	values.Set("country", "GB")
	target.RawQuery = values.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// tokenClient checks the media type, parses the form and authenticates the
// client (form body or HTTP Basic); false means an error was written.
func (s *Server) tokenClient(w http.ResponseWriter, r *http.Request) (Client, bool) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		writeOAuthError(w, "invalid_request", "Content-Type must be application/x-www-form-urlencoded.")
		return Client{}, false
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, "invalid_request", "The request body is not a valid form.")
		return Client{}, false
	}
	id, sec := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if bid, bsec, ok := r.BasicAuth(); ok && id == "" {
		id, sec = bid, bsec
	}
	c, ok := s.clients[id]
	if !ok || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(sec)) != 1 {
		writeOAuthError(w, "invalid_client", "Client authentication failed.")
		return Client{}, false
	}
	return c, true
}

// handleToken is Sage's token endpoint: code exchange and refresh, with
// single-use rotating refresh tokens.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if _, f := s.controls(); s.draw(f.TokenServerErrorRate) {
		// Injected fault: nothing is issued or rotated, so the client may retry
		// with the same code or refresh token. Sage's 5xx body here is not
		// documented; the OAuth error shape is used [I].
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusInternalServerError, oauthError{
			Error: "server_error", Description: "The authorization server encountered an unexpected condition."})
		return
	}
	client, ok := s.tokenClient(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	param, what := "code", "authorization code"
	switch f.Get("grant_type") {
	case "authorization_code":
	case "refresh_token":
		param, what = "refresh_token", "refresh token"
	case "":
		writeOAuthError(w, "invalid_request", "The grant_type parameter is missing.")
		return
	default:
		writeOAuthError(w, "unsupported_grant_type", "The grant_type is not supported.")
		return
	}
	raw := f.Get(param)
	if raw == "" {
		writeOAuthError(w, "invalid_request", "The "+param+" parameter is missing.")
		return
	}
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	g, code := s.refreshTokens[raw], s.codes[raw]
	if param == "code" {
		g = nil
		if code != nil {
			g = &code.grant
		}
	}
	fail := func(description string) { writeOAuthError(w, "invalid_grant", description) }
	switch {
	case g == nil || g.clientID != client.ID:
		fail("The " + what + " is invalid.")
	case g.used:
		fail("The " + what + " has already been used.")
	case g.revoked:
		fail("The refresh token has been revoked.")
	case !now.Before(g.expiresAt):
		fail("The " + what + " has expired.")
	case code != nil && f.Get("redirect_uri") != code.redirectURI:
		fail("The redirect_uri does not match the one used for authorization.")
	case code != nil && !pkceOK(code, f.Get("code_verifier")):
		fail("The code_verifier does not match the code_challenge.")
	default:
		g.used = true
		s.issueTokensLocked(w, now, g.userName, client.ID, g.scope)
	}
}

func pkceOK(ac *authCode, verifier string) bool {
	if ac.challenge == "" {
		return true
	}
	if ac.challengeMeth == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		verifier = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return subtle.ConstantTimeCompare([]byte(verifier), []byte(ac.challenge)) == 1
}

// issueTokensLocked mints an access and a refresh token and writes the token
// response. s.mu must be held for writing.
func (s *Server) issueTokensLocked(w http.ResponseWriter, now time.Time, userName, clientID, scope string) {
	access, refresh := secret(32), secret(32)
	s.accessTokens[access] = &grant{userName: userName, clientID: clientID, scope: scope, expiresAt: now.Add(accessTokenTTL)}
	s.refreshTokens[refresh] = &grant{userName: userName, clientID: clientID, scope: scope, expiresAt: now.Add(refreshTokenTTL)}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, TokenResponse{
		AccessToken: access, Scope: scope, TokenType: "bearer", ExpiresIn: int(accessTokenTTL.Seconds()),
		RefreshToken: refresh, RefreshTokenExpiresIn: int(refreshTokenTTL.Seconds()),
		RequestedByID: s.users[userName].id,
	})
}

// handleRevoke revokes a refresh token. Access tokens cannot be revoked on Sage;
// they stay valid until they expire.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	client, ok := s.tokenClient(w, r)
	if !ok {
		return
	}
	raw := r.PostForm.Get("token")
	if raw == "" {
		writeOAuthError(w, "invalid_request", "The token parameter is missing.")
		return
	}
	s.mu.Lock()
	if rt, ok := s.refreshTokens[raw]; ok && rt.clientID == client.ID {
		rt.revoked = true
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"success": "ok"})
}
