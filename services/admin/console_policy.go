package admin

import "net/http"

// routesPolicy registers the policy page of a tenant.
func (s *Service) routesPolicy(mux *http.ServeMux) {}
