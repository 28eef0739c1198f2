package admin

import (
	"net/http"
	"net/url"

	"github.com/ledgersync/ledger/libs/telemetry"
)

// devTokenCookie carries the operator token in a browser after it was given
// once as ?token= (LEDGER_ENV=dev only), so dashboard links need not repeat it.
const devTokenCookie = "ledger_admin_token"

// HTTPHandler serves, on the admin HTTP listener:
//
//	GET /oauth/sage/start?tenant=T   operator: 302 to Sage's authorization page
//	GET /oauth/sage/callback         public (the state is the credential)
//	GET /dashboard                   operator: tenants and recent runs
//	GET /metrics                     public
//
// The runtime (libs/process) serves /healthz and /readyz in front of it.
// Operator routes take "Authorization: Bearer <ADMIN_TOKEN>"; with
// LEDGER_ENV=dev also ?token=<ADMIN_TOKEN> (for a browser).
func (s *Service) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /oauth/sage/start", s.operator(http.HandlerFunc(s.handleSageStart)))
	mux.HandleFunc("GET "+CallbackPath, s.handleSageCallback)
	mux.Handle("GET /dashboard", s.operator(http.HandlerFunc(s.handleDashboard)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/dashboard", http.StatusFound)
	})
	mux.Handle("GET /metrics", telemetry.MetricsHandler(s.reg))
	return securityHeaders(mux)
}

// operator requires the operator token. In dev, a valid ?token= is moved into
// an HttpOnly cookie and the URL is reloaded without it.
func (s *Service) operator(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Env == "dev" && !s.cfg.InsecureDev {
			if tok := r.URL.Query().Get("token"); tok != "" && s.tokenOK(tok) {
				http.SetCookie(w, &http.Cookie{Name: devTokenCookie, Value: tok, Path: "/", HttpOnly: true,
					SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: 12 * 3600})
				u := *r.URL
				q := u.Query()
				q.Del("token")
				u.RawQuery = q.Encode()
				http.Redirect(w, r, (&url.URL{Path: u.Path, RawQuery: u.RawQuery}).String(), http.StatusSeeOther)
				return
			}
			if c, err := r.Cookie(devTokenCookie); err == nil && s.tokenOK(c.Value) {
				next.ServeHTTP(w, r)
				return
			}
		}
		if !s.authorizeHTTP(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ledger-admin"`)
			fix := "Send the header Authorization: Bearer <ADMIN_TOKEN>."
			if s.cfg.Env == "dev" {
				fix += " In dev you may instead add ?token=<ADMIN_TOKEN> to the URL once."
			}
			s.renderMessage(w, http.StatusUnauthorized, page{Title: "Operator credential required",
				Problem: "This page needs the admin token.", Fix: fix})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders keeps pages out of frames and caches, and keeps OAuth codes
// out of Referer headers.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
