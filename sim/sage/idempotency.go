package sagesim

import (
	"net/http"
	"time"
)

// idempotencyTTL is how long Sage remembers an idempotency_id.
const idempotencyTTL = 7 * 24 * time.Hour

// idemEntry is the remembered outcome of a request that carried an
// idempotency_id.
type idemEntry struct {
	resource  string
	status    int
	body      []byte
	expiresAt time.Time
}

// replayLocked returns the answer for a request whose resource object carries
// idempotency_id id, if Sage would not process it: the original response when the
// id was used for the same resource type within 7 days, or 422
// IdempotencyResourceMismatch when it was used for another type. s.mu must be held
// for writing, from the lookup through the store, so two concurrent requests with
// one id cannot both create.
func (s *Server) replayLocked(b *business, resource, id string) (response, bool) {
	if id == "" {
		return response{}, false
	}
	e, ok := b.idem[id]
	if !ok || !s.Now().Before(e.expiresAt) {
		return response{}, false
	}
	if e.resource != resource {
		return errorResponse(http.StatusUnprocessableEntity,
			apiErr(CodeIdempotencyMismatch, "Entity type mismatch", "")), true
	}
	return response{status: e.status, body: e.body}, true
}

// rememberLocked stores a successful outcome under id. Failures are not stored
// [I]: Sage documents replay of "the original result" only for successes, and a
// client that fixes a 422 and retries with the same deterministic id must get
// through.
func (s *Server) rememberLocked(b *business, resource, id string, resp response) {
	if id == "" || resp.status/100 != 2 {
		return
	}
	b.idem[id] = idemEntry{resource: resource, status: resp.status, body: resp.body, expiresAt: s.Now().Add(idempotencyTTL)}
}
