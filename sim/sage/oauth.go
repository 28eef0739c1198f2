package sagesim

import (
	"cmp"
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

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, oauthError{Error: code, Description: description})
}

// handleAuthorize is Sage's authorization endpoint. The user approves at once,
// so it redirects to the client's callback; errors it cannot redirect (an
// unknown client or redirect URI) are a 400. The simulator-only sim_user names
// the Sage user who approves (created on first use); by default the default
// user does.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	client, ok := s.clients[q.Get("client_id")]
	redirect := q.Get("redirect_uri")
	target, err := url.Parse(redirect)
	switch {
	case !ok:
		writeOAuthError(w, http.StatusBadRequest, "invalid_client", "Unknown client_id.")
		return
	case redirect == "" || err != nil || !target.IsAbs():
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "redirect_uri is missing or not an absolute URL.")
		return
	case len(client.RedirectURIs) > 0 && !slices.Contains(client.RedirectURIs, redirect):
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The redirect_uri does not match a registered callback URL.")
		return
	}
	values := target.Query()
	if state := q.Get("state"); state != "" {
		values.Set("state", state)
	}
	scope, challenge, method := cmp.Or(q.Get("scope"), "full_access"), q.Get("code_challenge"), q.Get("code_challenge_method")
	if challenge != "" {
		method = cmp.Or(method, "plain")
	}
	switch {
	case q.Get("response_type") != "code":
		values.Set("error", "unsupported_response_type")
	case scope != "readonly" && scope != "full_access":
		values.Set("error", "invalid_scope")
	case challenge != "" && method != "plain" && method != "S256":
		values.Set("error", "invalid_request")
	default:
		name, code, now := cmp.Or(q.Get("sim_user"), defaultUser), "GB/"+secret(20), s.Now()
		s.mu.Lock()
		s.userLocked(name, false)
		s.codes[code] = &authCode{grant: grant{userName: name, clientID: client.ID, scope: scope, expiresAt: now.Add(authCodeTTL)},
			redirectURI: redirect, challenge: challenge, challengeMeth: method}
		s.mu.Unlock()
		values.Set("code", code)
		values.Set("country", "GB")
	}
	target.RawQuery = values.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// tokenClient checks the media type, parses the form and authenticates the
// client (form body or HTTP Basic); false means an error was written.
func (s *Server) tokenClient(w http.ResponseWriter, r *http.Request) (Client, bool) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded.")
		return Client{}, false
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The request body is not a valid form.")
		return Client{}, false
	}
	id, sec := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if bid, bsec, ok := r.BasicAuth(); ok && id == "" {
		id, sec = bid, bsec
	}
	c, ok := s.clients[id]
	if !ok || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(sec)) != 1 {
		writeOAuthError(w, http.StatusBadRequest, "invalid_client", "Client authentication failed.")
		return Client{}, false
	}
	return c, true
}

// handleToken is Sage's token endpoint: code exchange (with the redirect URI
// authorized and, if PKCE was used, the verifier) and refresh, with single-use
// rotating refresh tokens.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if _, f := s.controls(); s.draw(f.TokenServerErrorRate) {
		// Injected fault: nothing is issued or rotated, so the client may retry
		// with the same code or refresh token. Sage's 5xx body here is not
		// documented; the OAuth error shape is used [I].
		writeOAuthError(w, http.StatusInternalServerError, "server_error", "The authorization server encountered an unexpected condition.")
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
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The grant_type parameter is missing.")
		return
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "The grant_type is not supported.")
		return
	}
	raw := f.Get(param)
	if raw == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The "+param+" parameter is missing.")
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
	fail := func(description string) { writeOAuthError(w, http.StatusBadRequest, "invalid_grant", description) }
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
	case code != nil && code.challenge != "" && subtle.ConstantTimeCompare([]byte(pkce(code.challengeMeth, f.Get("code_verifier"))),
		[]byte(code.challenge)) != 1:
		fail("The code_verifier does not match the code_challenge.")
	default:
		g.used = true
		access, refresh := secret(32), secret(32)
		s.accessTokens[access] = &grant{userName: g.userName, clientID: client.ID, scope: g.scope, expiresAt: now.Add(accessTokenTTL)}
		s.refreshTokens[refresh] = &grant{userName: g.userName, clientID: client.ID, scope: g.scope, expiresAt: now.Add(refreshTokenTTL)}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, TokenResponse{
			AccessToken: access, Scope: g.scope, TokenType: "bearer", ExpiresIn: int(accessTokenTTL.Seconds()),
			RefreshToken: refresh, RefreshTokenExpiresIn: int(refreshTokenTTL.Seconds()), RequestedByID: s.users[g.userName].id,
		})
	}
}

// pkce is the challenge a verifier answers with method (plain or S256).
func pkce(method, verifier string) string {
	if method != "S256" {
		return verifier
	}
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
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
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The token parameter is missing.")
		return
	}
	s.mu.Lock()
	if rt, ok := s.refreshTokens[raw]; ok && rt.clientID == client.ID {
		rt.revoked = true
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"success": "ok"})
}
