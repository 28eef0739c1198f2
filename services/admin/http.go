package admin

import (
	"net/http"

	"github.com/ledgersync/ledger/libs/telemetry"
)

// HTTPHandler serves, on the admin HTTP listener:
//
//	GET  /login, POST /login         the console's login form (ADMIN_TOKEN)
//	POST /logout                     console: ends the session
//	GET  /dashboard, GET /tenants    console: tenants, their health and the actions they need
//	     /tenants/…                  console: create, connect, disconnect, policy (console_*.go)
//	     /runs, /dead-letters, …     console: runs and dead letters (routesRuns)
//	GET  /oauth/sage/start?tenant=T  console: 302 to Sage's authorization page
//	GET  /oauth/sage/callback        public (the state is the credential)
//	GET  /metrics                    public
//
// The runtime (libs/process) serves /healthz and /readyz in front of it.
// Console routes need a session (console.go) or, for scripts, the header
// "Authorization: Bearer <ADMIN_TOKEN>"; with LEDGER_ENV=dev a browser may
// also log in with ?token=<ADMIN_TOKEN> once.
func (s *Service) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", s.handleLoginForm)
	mux.HandleFunc("POST /login", s.handleLogin)
	mux.Handle("POST /logout", s.console(http.HandlerFunc(s.handleLogout)))
	mux.Handle("GET /oauth/sage/start", s.console(http.HandlerFunc(s.handleSageStart)))
	mux.HandleFunc("GET "+CallbackPath, s.handleSageCallback)
	mux.Handle("GET /dashboard", s.console(http.HandlerFunc(s.handleDashboard)))
	s.routesTenants(mux)
	s.routesRuns(mux)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/dashboard", http.StatusFound)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.Handle("GET /metrics", telemetry.MetricsHandler(s.reg))
	return securityHeaders(mux)
}

// securityHeaders keeps pages out of frames and caches, keeps OAuth codes out
// of Referer headers, and allows no script and no outside resource.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
