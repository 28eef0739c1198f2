package admin

import "net/http"

// routesRuns registers the console's runs, run and dead-letter pages (helper
// B's part of the console; see console.go for how to add a page).
func (s *Service) routesRuns(mux *http.ServeMux) {}
