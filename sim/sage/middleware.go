package sagesim

import (
	"mime"
	"net/http"
	"strings"
	"time"
)

// apiHandler answers one authenticated, business-scoped API request.
type apiHandler func(r *http.Request, c *apiCall) response

// apiCall is what the middleware established about a request.
type apiCall struct {
	user     *user
	business *business
	token    *grant
}

// routeOpts varies the middleware per route.
type routeOpts struct {
	// noBusiness marks the /businesses routes: X-Business is neither checked
	// nor echoed there, as on Sage.
	noBusiness bool
}

// api wraps h with what every /v3.1/ request goes through, in Sage's order as far
// as it is observable: request id, app-wide limits (concurrency, per day),
// latency, connection reset, injected 500, bearer token, business selection,
// per-business rate limit, media type, scope; then h, whose answer may be
// dropped after the fact (commit-then-drop).
func (s *Server) api(h apiHandler, opts routeOpts) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Sage's header name really has underscores; set it raw so it is not
		// canonicalised to X_request_id on the wire.
		w.Header()["x_request_id"] = []string{secret(16)}
		_, faults := s.controls()
		leave, refused := s.enterApp(faults)
		defer leave()
		if refused != nil {
			refused.write(w)
			return
		}
		if d := s.latency(faults); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if s.draw(faults.ConnectionResetRate) {
			resetConnection(w)
			return
		}
		if s.draw(faults.ServerErrorRate) {
			errorResponse(http.StatusInternalServerError, apiErr(CodeUnexpectedError, "An unexpected error occurred.", "")).write(w)
			return
		}
		c, fail := s.authenticate(r, opts)
		if fail != nil {
			fail.write(w)
			return
		}
		if !opts.noBusiness {
			w.Header().Set("X-Business", c.business.info.ID)
		}
		if limited := s.rateLimit(c.business.info.ID, faults); limited != nil {
			limited.write(w)
			return
		}
		mutating := r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodDelete
		if (r.Method == http.MethodPost || r.Method == http.MethodPut) && !isJSON(r.Header.Get("Content-Type")) {
			errorResponse(http.StatusUnsupportedMediaType,
				apiErr(CodeUnsupportedMediaType, "Only application/json is supported.", "")).write(w)
			return
		}
		if mutating && c.token.scope == "readonly" {
			errorResponse(http.StatusForbidden, apiErr(CodeMultiUserAccess,
				"The current user is not allowed to access that resource with that method.", "")).write(w)
			return
		}
		drop := mutating && s.draw(faults.CommitThenDropRate)
		resp := h(r, c)
		if drop {
			dropConnection(w)
			return
		}
		resp.write(w)
	}
}

// authenticate checks the bearer token and resolves the business. A non-nil
// response is the error to send.
func (s *Server) authenticate(r *http.Request, opts routeOpts) (*apiCall, *response) {
	unauthorized := func(msg string) (*apiCall, *response) {
		resp := errorResponse(http.StatusUnauthorized, apiErr(CodeAuthorizationFailure, msg, ""))
		return nil, &resp
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return unauthorized("Missing or malformed Authorization header; a Bearer access token is required.")
	}
	now := s.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	at, ok := s.accessTokens[raw]
	if !ok {
		return unauthorized("The access token is invalid.")
	}
	if !now.Before(at.expiresAt) {
		return unauthorized("The access token has expired.")
	}
	u := s.users[at.userName]
	c := &apiCall{user: u, token: at}
	bid := r.Header.Get("X-Business")
	if opts.noBusiness || bid == "" {
		c.business = s.businesses[u.leadID]
		return c, nil
	}
	b, exists := s.businesses[bid]
	switch {
	case !exists:
		resp := errorResponse(http.StatusNotFound, apiErr(CodeRecordNotFound, "Couldn't find business.", ""))
		return nil, &resp
	case !u.canAccess(bid):
		resp := errorResponse(http.StatusForbidden, apiErr(CodeAuthorizationFailure,
			"The current user is not allowed to access this business.", ""))
		return nil, &resp
	}
	c.business = b
	return c, nil
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}
