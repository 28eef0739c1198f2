package ingest

import (
	"fmt"
	"net/http"
	"sync"
)

// maxHeaderBytes caps a request's header block (http.Server.MaxHeaderBytes;
// net/http answers 431 beyond it). The shop sends about 500 bytes; net/http's
// default of 1 MiB would let every connection that trickles its headers hold
// a megabyte.
const maxHeaderBytes = 64 << 10

// eventOverhead is what an OutboxEvent message adds to the body it carries:
// the event's other fields (tenant, event, key, run id, times, ids) and the
// NATS headers (Nats-Msg-Id, type, trace context). It is generous: the fields
// are bounded (tenant 64, event 64, key 128 characters) and together stay
// under 2 KiB.
const eventOverhead = 16 << 10

// checkBodyFitsStream refuses a body limit the NATS server cannot carry
// (maxPayload is its max_payload): a body at the limit would be accepted by
// HTTP and then fail to publish on every retry (503 for four days, then a
// dead letter in the shop) instead of getting a clear 413.
func checkBodyFitsStream(maxBody, maxPayload int64) error {
	if maxPayload > 0 && maxBody+eventOverhead > maxPayload {
		return fmt.Errorf("INGEST_MAX_BODY_BYTES=%d: the NATS server takes messages of at most %d bytes (its max_payload) and an event is the body plus up to %d bytes; use at most %d, or raise max_payload",
			maxBody, maxPayload, eventOverhead, maxPayload-eventOverhead)
	}
	return nil
}

// overloaded answers 503 to a webhook of a tenant over its limit. It logs at
// WARN, not ERROR: the service is fine, one client is sending too much.
func (s *Service) overloaded(w http.ResponseWriter, r *http.Request, tenant string) {
	s.log.WarnContext(r.Context(), "ingest: webhook refused: too many of this tenant in progress", "tenant", tenant, "limit", s.cfg.TenantMaxInFlight)
	w.Header().Set("Retry-After", "60")
	writeError(w, http.StatusServiceUnavailable, "unavailable",
		"too many webhooks of this tenant in progress at once (the drain sends one at a time); Magento will retry")
}

// outcomeOverloaded is a webhook refused because its tenant already has
// TenantMaxInFlight webhooks in progress (503: the shop retries).
const outcomeOverloaded = "overloaded"

// tenantLimiter caps the webhooks of one tenant handled at once. The shop's
// drain posts one row at a time, so a tenant with more in flight is a
// misbehaving or compromised client; capping it bounds the memory and the
// database connections one tenant can take (each webhook holds up to
// MaxBodyBytes of body) and keeps the other tenants' deliveries flowing.
// Only tenants with a webhook in progress are remembered.
type tenantLimiter struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newTenantLimiter(max int) *tenantLimiter {
	return &tenantLimiter{max: max, n: make(map[string]int)}
}

// acquire takes a slot of tenant, or reports false when all are taken.
func (l *tenantLimiter) acquire(tenant string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[tenant] >= l.max {
		return false
	}
	l.n[tenant]++
	return true
}

// release gives back a slot taken by acquire.
func (l *tenantLimiter) release(tenant string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[tenant]--; l.n[tenant] <= 0 {
		delete(l.n, tenant)
	}
}
