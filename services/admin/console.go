package admin

// The operator console: login, sessions, CSRF and the page layout.
//
// How to add a console page (in its own file of this package):
//
//  1. Write the content template as templates/<name>.html. It is executed with a
//     consolePage: the page's own data is .Data, the form token is .CSRF. Every
//     <form method="post"> starts with {{template "csrf" .}} (the hidden field).
//     Do not write <html>/<head>: the layout (templates/layout.html) wraps it.
//  2. Write the handler and render with
//     s.renderConsole(w, r, http.StatusOK, "<name>.html", "Page title", data).
//     Errors the operator must see: s.renderConsoleMessage(w, r, code, page{…}).
//  3. Register the route wrapped in s.console(…): session required (GET without
//     one redirects to /login; a script may send Authorization: Bearer
//     <ADMIN_TOKEN> instead), and on POST the CSRF token and Origin are checked
//     before the handler runs (403 otherwise, nothing changed). Read form
//     values with r.PostFormValue after the check (the form is already parsed).
//  4. After a POST that changed something, s.setFlash(w, flashOK, "…") and
//     redirect (303) to the page to show; the next console page shows the flash.
//
// Call the AdminService methods of s (s.GetRun, s.RetryRuns, …) rather than the
// store, so the console is another client of the same code paths, and show an
// RPC's error with rpcMessage(err).

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/store"
)

// ConsoleSessionTTL is how long a console login lasts (then the operator logs
// in again).
const ConsoleSessionTTL = 12 * time.Hour

const (
	// sessionCookie holds the console session id (HttpOnly, SameSite=Strict);
	// outside dev it is Secure and named with the __Host- prefix, so no
	// sibling subdomain can set or shadow it.
	sessionCookie = "ledger_console"
	// loginCSRFCookie holds the login form's token until the login succeeds.
	loginCSRFCookie = "ledger_login"
	// flashCookie carries one message to the next page after a redirect.
	flashCookie = "ledger_flash"
	// csrfField is the hidden form field every console POST carries.
	csrfField = "csrf"
	// maxFlashBytes bounds a flash message (it travels in a cookie).
	maxFlashBytes = 1500
	// maxFormBytes bounds a console form (the policy's raw JSON is the largest).
	maxFormBytes = 512 << 10
)

// SessionStore is what the console needs to keep sessions; *store.Store
// implements it (migration 00011_console_sessions.sql).
type SessionStore interface {
	CreateConsoleSession(ctx context.Context, cs store.ConsoleSession) error
	ConsoleSessionByHash(ctx context.Context, idHash []byte) (store.ConsoleSession, error)
	DeleteConsoleSession(ctx context.Context, idHash []byte) error
}

var _ SessionStore = (*store.Store)(nil)

// consoleSession is the logged-in browser of a request (nil for a script
// authenticated by its Authorization header).
type consoleSession struct {
	idHash []byte
	csrf   string
}

type sessionKey struct{}

func sessionFrom(ctx context.Context) *consoleSession {
	cs, _ := ctx.Value(sessionKey{}).(*consoleSession)
	return cs
}

// flash is a one-time message shown at the top of the next console page.
type flash struct {
	Kind string `json:"k"` // flashOK or flashError
	Text string `json:"t"`
}

const (
	flashOK    = "ok"
	flashError = "error"
)

// consolePage is what every console template is executed with.
type consolePage struct {
	Title string
	// CSRF is the session's form token ("" for a script without a session).
	CSRF string
	// Flash is the message left by the previous POST, if any.
	Flash *flash
	// LoggedIn is false on the login page (the layout then shows no nav).
	LoggedIn bool
	// Path is the request path (the nav marks the current section).
	Path string
	// Dev is LEDGER_ENV=dev.
	Dev bool
	// Content is the rendered content template (layout only).
	Content template.HTML
	// Data is the page's own data.
	Data any
}

// Section reports whether the page belongs to the nav section at prefix.
func (p consolePage) Section(prefix string) bool {
	return p.Path == prefix || strings.HasPrefix(p.Path, prefix+"/")
}

// renderConsole renders the content template name with data inside the
// layout, with the session's CSRF token and the pending flash message.
func (s *Service) renderConsole(w http.ResponseWriter, r *http.Request, code int, name, title string, data any) {
	p := consolePage{Title: title, Path: r.URL.Path, Dev: s.cfg.Env == "dev", Data: data, Flash: takeFlash(w, r)}
	if cs := sessionFrom(r.Context()); cs != nil {
		p.CSRF, p.LoggedIn = cs.csrf, true
	} else if r.Header.Get("Authorization") != "" {
		p.LoggedIn = true
	}
	s.renderLayout(w, code, name, p)
}

func (s *Service) renderLayout(w http.ResponseWriter, code int, name string, p consolePage) {
	var content strings.Builder
	if err := templates.ExecuteTemplate(&content, name, p); err != nil {
		s.log.Error("rendering console page", "template", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	p.Content = template.HTML(content.String()) //nolint:gosec // produced by html/template above
	s.render(w, code, "layout.html", p)
}

// renderConsoleMessage renders a one-message page (an error, a refusal)
// inside the layout.
func (s *Service) renderConsoleMessage(w http.ResponseWriter, r *http.Request, code int, msg page) {
	s.renderConsole(w, r, code, "message_body", msg.Title, msg)
}

// rpcMessage is the text of an AdminService error as the operator should
// read it: the status message, without the "rpc error: code = …" prefix.
func rpcMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// setFlash leaves a message for the next console page (after a redirect).
func (s *Service) setFlash(w http.ResponseWriter, kind, text string) {
	if len(text) > maxFlashBytes { // a cookie holds about 4 KiB
		text = strings.ToValidUTF8(text[:maxFlashBytes], "") + "…"
	}
	b, _ := json.Marshal(flash{Kind: kind, Text: text})
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/",
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteStrictMode, MaxAge: 60})
}

// takeFlash reads and clears the pending flash message.
func takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil
	}
	var f flash
	if json.Unmarshal(b, &f) != nil || f.Text == "" || (f.Kind != flashOK && f.Kind != flashError) {
		return nil
	}
	return &f
}

// secureCookies is whether cookies carry the Secure attribute: always, except
// with LEDGER_ENV=dev (plain http on localhost).
func (s *Service) secureCookies() bool { return s.cfg.Env != "dev" }

// sessionCookieName is the session cookie's name: __Host-ledger_console
// outside dev (the browser then insists on Secure, Path=/ and no Domain),
// ledger_console in dev.
func (s *Service) sessionCookieName() string {
	if s.secureCookies() {
		return "__Host-" + sessionCookie
	}
	return sessionCookie
}

func randomToken() string {
	b := make([]byte, 32) // 256 bits
	_, _ = rand.Read(b)   // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashSessionID(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

func equalTokens(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// startSession creates a session and sets its cookie.
func (s *Service) startSession(w http.ResponseWriter, r *http.Request) error {
	id := randomToken()
	if err := s.st.CreateConsoleSession(r.Context(), store.ConsoleSession{IDHash: hashSessionID(id), CSRFToken: randomToken(),
		ExpiresAt: time.Now().Add(ConsoleSessionTTL)}); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: s.sessionCookieName(), Value: id, Path: "/", HttpOnly: true, Secure: s.secureCookies(),
		SameSite: http.SameSiteStrictMode, MaxAge: int(ConsoleSessionTTL / time.Second)})
	return nil
}

// lookupSession returns the request's live session, or nil.
func (s *Service) lookupSession(r *http.Request) *consoleSession {
	c, err := r.Cookie(s.sessionCookieName())
	if err != nil || c.Value == "" {
		return nil
	}
	cs, err := s.st.ConsoleSessionByHash(r.Context(), hashSessionID(c.Value))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.ErrorContext(r.Context(), "console: reading a session", "err", err)
		}
		return nil
	}
	return &consoleSession{idHash: cs.IDHash, csrf: cs.CSRFToken}
}

// console wraps a console handler: it needs a session (or, for scripts, the
// operator token in an Authorization header and no session cookie), and a
// POST must come from this site and carry the session's CSRF token.
//
// With LEDGER_ENV=dev a valid ?token=<ADMIN_TOKEN> logs the browser in (the
// link `make run` prints) and the URL is reloaded without it.
func (s *Service) console(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Env == "dev" && r.Method == http.MethodGet {
			if tok := r.URL.Query().Get("token"); tok != "" && s.tokenOK(tok) {
				if err := s.startSession(w, r); err != nil {
					s.log.ErrorContext(r.Context(), "console: starting a session", "err", err)
					s.renderMessage(w, http.StatusServiceUnavailable, page{Title: "Login failed",
						Problem: "The session could not be stored (details in the admin service log).", Fix: "Check /readyz and try again."})
					return
				}
				q := r.URL.Query()
				q.Del("token")
				http.Redirect(w, r, (&url.URL{Path: r.URL.Path, RawQuery: q.Encode()}).String(), http.StatusSeeOther)
				return
			}
		}
		cs := s.lookupSession(r)
		if cs == nil && r.Header.Get("Authorization") != "" {
			// A script: the operator token or 401 (never the login page). A
			// browser does not add this header to a cross-site request, so
			// no CSRF token is needed.
			if !s.tokenOK(bearer(r.Header.Get("Authorization"))) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ledger-admin"`)
				s.renderMessage(w, http.StatusUnauthorized, page{Title: "Operator credential required",
					Problem: "The Authorization header does not carry the operator token.",
					Fix:     "Send Authorization: Bearer <ADMIN_TOKEN>, or log in at /login in a browser."})
				return
			}
			if r.Method == http.MethodPost {
				r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
				if err := r.ParseForm(); err != nil {
					s.renderConsoleMessage(w, r, http.StatusBadRequest, page{Title: "Bad form",
						Problem: "The form could not be read: " + err.Error(), Fix: "Send application/x-www-form-urlencoded under 512 KiB."})
					return
				}
			}
			next.ServeHTTP(w, r)
			return
		}
		if cs == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.forbidden(w, r, "Your console session has ended or this browser is not logged in.")
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, cs))
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if why := s.crossSite(r); why != "" {
				s.forbidden(w, r, why)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				s.forbidden(w, r, "The form could not be read.")
				return
			}
			if !equalTokens(r.PostFormValue(csrfField), cs.csrf) {
				s.forbidden(w, r, "The form's security token is missing, stale or forged.")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// crossSite explains why a state-changing request does not come from this
// site ("" when it does). Browsers send Sec-Fetch-Site; it must be
// same-origin. Without it, an Origin header must be this site's; "null" is
// what a browser sends under this site's Referrer-Policy: no-referrer, so it
// proves nothing either way (the CSRF token still decides).
func (s *Service) crossSite(r *http.Request) string {
	if v := r.Header.Get("Sec-Fetch-Site"); v != "" {
		if v != "same-origin" {
			return "The request came from another site (Sec-Fetch-Site: " + v + ")."
		}
		return ""
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" && !sameOrigin(o, s.cfg.PublicURL) && !sameOrigin(o, requestOrigin(r)) {
		return "The request came from another origin."
	}
	return ""
}

func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func sameOrigin(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Scheme != "" && strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}

// forbidden is the 403 page: nothing was changed.
func (s *Service) forbidden(w http.ResponseWriter, r *http.Request, why string) {
	s.log.WarnContext(r.Context(), "console: request refused", "path", r.URL.Path, "reason", why)
	s.renderConsoleMessage(w, r, http.StatusForbidden, page{Title: "Request refused (nothing was changed)",
		Problem: why, Fix: "Go back, reload the page and submit the form again; if it keeps happening, log out and log in."})
}

// safeNext is a same-site path to go to after login ("/dashboard" otherwise).
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.HasPrefix(next, "/login") || strings.ContainsAny(next, "\r\n") {
		return "/dashboard"
	}
	return next
}

type loginData struct {
	Next  string
	Error string
	Dev   bool
	// Password is true when ADMIN_OPERATOR_PASSWORD_HASH is set.
	Password bool
}

// handleLoginForm renders the login form with a fresh login token.
func (s *Service) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	if s.lookupSession(r) != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, loginData{Next: safeNext(r.URL.Query().Get("next"))})
}

func (s *Service) renderLogin(w http.ResponseWriter, r *http.Request, code int, d loginData) {
	tok := randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginCSRFCookie, Value: tok, Path: "/login", HttpOnly: true,
		Secure: s.secureCookies(), SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	d.Dev = s.cfg.Env == "dev"
	d.Password = s.cfg.OperatorPasswordHash.Reveal() != ""
	s.renderLayout(w, code, "login.html", consolePage{Title: "Log in", CSRF: tok, Path: r.URL.Path, Dev: d.Dev,
		Flash: takeFlash(w, r), Data: d})
}

// handleLogin checks the operator credential and starts a session.
func (s *Service) handleLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.renderLogin(w, r, http.StatusBadRequest, loginData{Next: "/dashboard", Error: "The form could not be read; try again."})
		return
	}
	next := safeNext(r.PostFormValue("next"))
	c, err := r.Cookie(loginCSRFCookie)
	if err != nil || !equalTokens(r.PostFormValue(csrfField), c.Value) || s.crossSite(r) != "" {
		s.renderLogin(w, r, http.StatusForbidden, loginData{Next: next,
			Error: "The login form expired or did not come from this site. Enter the token again."})
		return
	}
	limiter := &s.logins
	if !limiter.allowed(time.Now()) {
		s.log.WarnContext(r.Context(), "console: login refused: too many failed logins in the last minute")
		s.renderLogin(w, r, http.StatusTooManyRequests, loginData{Next: next,
			Error: "Too many failed logins in the last minute: wait a minute, then try again."})
		return
	}
	cred := strings.TrimSpace(r.PostFormValue("token"))
	if !s.tokenOK(cred) && !s.passwordOK(cred) {
		limiter.failed(time.Now())
		s.log.WarnContext(r.Context(), "console: login refused")
		msg := "token: not the operator credential. Paste the value of ADMIN_TOKEN (the admin service's environment)."
		if s.cfg.OperatorPasswordHash.Reveal() != "" {
			msg = "token: neither the operator token (ADMIN_TOKEN) nor the operator password."
		}
		s.renderLogin(w, r, http.StatusUnauthorized, loginData{Next: next, Error: msg})
		return
	}
	if err := s.startSession(w, r); err != nil {
		s.log.ErrorContext(r.Context(), "console: starting a session", "err", err)
		s.renderLogin(w, r, http.StatusServiceUnavailable, loginData{Next: next,
			Error: "The session could not be stored (details in the admin service log). Check /readyz and try again."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCSRFCookie, Value: "", Path: "/login", MaxAge: -1})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// handleLogout ends the session (a console POST: CSRF checked).
func (s *Service) handleLogout(w http.ResponseWriter, r *http.Request) {
	if cs := sessionFrom(r.Context()); cs != nil {
		if err := s.st.DeleteConsoleSession(r.Context(), cs.idHash); err != nil {
			s.log.ErrorContext(r.Context(), "console: ending a session", "err", err)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: s.sessionCookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.secureCookies(), SameSite: http.SameSiteStrictMode})
	s.setFlash(w, flashOK, "You are logged out.")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
