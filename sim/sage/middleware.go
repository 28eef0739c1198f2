package sagesim

import (
	"encoding/json"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"
)

// APIError is an entry of the error array Sage answers /v3.1/ 4xx and 5xx with.
type APIError struct {
	Severity string `json:"$severity"`
	DataCode string `json:"$dataCode"`
	Message  string `json:"$message"`
	Source   string `json:"$source"`
}

// Data codes used by the simulator. The first four appear in Sage's documents;
// the others are Sage-like names for cases Sage has not documented.
const (
	CodeAuthorizationFailure = "AuthorizationFailure"
	CodeUnexpectedError      = "UnexpectedError"
	CodeRecordInvalid        = "RecordInvalid"
	CodeRecordNotFound       = "RecordNotFound"
	CodeIdempotencyMismatch  = "IdempotencyResourceMismatch"
	CodeMultiUserAccess      = "MultiUserAccessDenied"
	CodeTooManyRequests      = "TooManyRequests"
	CodeUnsupportedMediaType = "UnsupportedMediaType"
	CodeBadRequest           = "BadRequest"
)

func apiErr(code, message, source string) APIError {
	return APIError{Severity: "error", DataCode: code, Message: message, Source: source}
}

func required(source string) APIError {
	return apiErr(CodeRecordInvalid, "This field is required.", source)
}

// response is a handler's answer, which the middleware writes or drops.
type response struct {
	status int
	body   []byte
	header http.Header
}

func jsonResponse(status int, v any) *response {
	b, err := json.Marshal(v)
	if err != nil {
		return errorResponse(http.StatusInternalServerError, apiErr(CodeUnexpectedError, "An unexpected error occurred.", ""))
	}
	return &response{status: status, body: b}
}

func errorResponse(status int, errs ...APIError) *response {
	b, _ := json.Marshal(errs) // a slice of strings always marshals
	return &response{status: status, body: b}
}

func unprocessable(errs ...APIError) *response {
	return errorResponse(http.StatusUnprocessableEntity, errs...)
}

func notFound() *response {
	return errorResponse(http.StatusNotFound, apiErr(CodeRecordNotFound, "Couldn't find record.", ""))
}

func (r *response) write(w http.ResponseWriter) {
	for k, vs := range r.header {
		w.Header()[k] = append(w.Header()[k], vs...)
	}
	if r.body != nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body)
}

func writeJSON(w http.ResponseWriter, status int, v any) { jsonResponse(status, v).write(w) }

// apiHandler answers one authenticated, business-scoped API request.
type apiHandler func(r *http.Request, c *apiCall) *response

// apiCall is what the middleware established about a request.
type apiCall struct {
	user     *user
	business *business
	token    *grant
}

// api wraps h with what every /v3.1/ request goes through, in Sage's order as far
// as it is observable: request id, app-wide limits (concurrency, per day),
// latency, connection reset, injected 500, bearer token, business selection,
// per-business rate limit, media type, scope; then h, whose answer may be
// dropped after the fact (commit-then-drop).
func (s *Server) api(h apiHandler) http.HandlerFunc { return s.apiFor(h, false) }

// apiFor is api; noBusiness marks the /businesses routes, where X-Business is
// neither checked nor echoed, as on Sage.
func (s *Server) apiFor(h apiHandler, noBusiness bool) http.HandlerFunc {
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
			// A TCP RST (SO_LINGER 0) before anything is done: the client sees
			// "connection reset by peer".
			conn := hijack(w)
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = conn.Close()
			return
		}
		if s.draw(faults.ServerErrorRate) {
			errorResponse(http.StatusInternalServerError, apiErr(CodeUnexpectedError, "An unexpected error occurred.", "")).write(w)
			return
		}
		c, fail := s.authenticate(r, noBusiness)
		if fail != nil {
			fail.write(w)
			return
		}
		if !noBusiness {
			w.Header().Set("X-Business", c.business.info.ID)
		}
		mutating := r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodDelete
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch limited := s.rateLimit(c.business.info.ID, faults); {
		case limited != nil:
			limited.write(w)
		case (r.Method == http.MethodPost || r.Method == http.MethodPut) && (err != nil || mt != "application/json" && !strings.HasSuffix(mt, "+json")):
			errorResponse(http.StatusUnsupportedMediaType, apiErr(CodeUnsupportedMediaType, "Only application/json is supported.", "")).write(w)
		case mutating && c.token.scope == "readonly":
			errorResponse(http.StatusForbidden, apiErr(CodeMultiUserAccess,
				"The current user is not allowed to access that resource with that method.", "")).write(w)
		case mutating && s.draw(faults.CommitThenDropRate):
			h(r, c)
			_ = hijack(w).Close()
		default:
			h(r, c).write(w)
		}
	}
}

// authenticate checks the bearer token and resolves the business, or answers.
func (s *Server) authenticate(r *http.Request, noBusiness bool) (*apiCall, *response) {
	unauthorized := func(msg string) (*apiCall, *response) {
		return nil, errorResponse(http.StatusUnauthorized, apiErr(CodeAuthorizationFailure, msg, ""))
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
	bid := r.Header.Get("X-Business")
	if noBusiness || bid == "" {
		bid = u.leadID
	}
	switch b, exists := s.businesses[bid]; {
	case !exists:
		return nil, errorResponse(http.StatusNotFound, apiErr(CodeRecordNotFound, "Couldn't find business.", ""))
	case !u.canAccess(bid):
		return nil, errorResponse(http.StatusForbidden, apiErr(CodeAuthorizationFailure,
			"The current user is not allowed to access this business.", ""))
	default:
		return &apiCall{user: u, token: at, business: b}, nil
	}
}
