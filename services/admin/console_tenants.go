package admin

import "net/http"

// routesTenants registers the tenants pages: the list, one tenant, creation,
// connect and disconnect (console_connect.go) and the policy
// (console_policy.go).
func (s *Service) routesTenants(mux *http.ServeMux) {
	mux.Handle("GET /tenants", s.console(http.HandlerFunc(s.handleDashboard)))
}
