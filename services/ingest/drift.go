package ingest

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
)

// Auth drift from the shop's side (docs/runbooks.md#auth-drift-and-re-pair).
//
// When the api key Ledger holds for a tenant and the one in the shop differ
// (one side was paired again without the other), every webhook the shop sends
// fails its signature and the shop dead-letters the outbox row at once. The
// mapper notices only when it fetches from the shop; a shop whose webhooks are
// all refused gives it nothing to fetch. So ingest counts the refusals too.
//
// What counts: a delivery (webhook or relayed row) for a tenant whose Magento
// binding is active, whose token parses and names that tenant (sub = the
// URL's or subject's tenant, iss magento, aud byte8-ledger, a jti, times and
// lifetime within bounds) and fails only its signature. Anything else (no
// token, garbage, another tenant's sub, an expired token) is not the shop
// signing with a drifted key and is not counted.
//
// A stranger can still mint such a token: the tenant id is not a secret. So
// the count alone never flips a binding. Once AuthDriftThreshold refusals fall
// within AuthDriftWindow with no accepted delivery since, ingest pings the
// shop (GET /V1/byte8/ping) with Ledger's key, as the mapper confirms a
// refused fetch:
//
//   - the shop answers 401: it no longer holds Ledger's key: drift confirmed,
//     the binding becomes token_revoked (the tile says "re-pair required",
//     the dashboard and ledgerctl say re-pair);
//   - the shop accepts the ping: the keys agree and the refused deliveries
//     came from someone else (or a second, misconfigured installation):
//     nothing changes, a WARN says so;
//   - no answer or another status: unconfirmed, nothing changes.
//
// At most one ping per tenant per window and replica, so refusals cannot be
// used to flood a shop with pings; and once a tenant's count is at the
// threshold, its refusals are written at most once a second per replica, so a
// flood of forged tokens costs the database little more than the tenant
// lookup every request already makes. The trade-off: a drift is flipped only
// while the shop answers Ledger (firewalled shops stay active, with the
// refusals on the dashboard), and the flip comes one ping after the
// threshold.
type driftGuard struct {
	mu sync.Mutex
	// pinged is when each tenant's shop was last pinged for drift.
	pinged map[string]time.Time
	// full is when each tenant's count last reached the threshold: the kept
	// refusals are then at their cap, so a flood of refusals is recorded at
	// most once per fullRecordEvery (only last_unauthorized_at would move).
	full map[string]time.Time
}

// fullRecordEvery paces the writes of a tenant whose refusals are at the
// threshold already.
const fullRecordEvery = time.Second

func newDriftGuard() *driftGuard {
	return &driftGuard{pinged: map[string]time.Time{}, full: map[string]time.Time{}}
}

// shouldRecord reports whether a refusal of tenant at now is written: always,
// unless its count was at the threshold less than fullRecordEvery ago.
func (g *driftGuard) shouldRecord(tenant string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	at, ok := g.full[tenant]
	if ok && now.Sub(at) < fullRecordEvery {
		return false
	}
	delete(g.full, tenant)
	return true
}

// atThreshold notes that tenant's count reached the threshold at now.
func (g *driftGuard) atThreshold(tenant string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.full[tenant] = now
}

// mayPing reports whether tenant's shop may be pinged now, and if so notes it.
func (g *driftGuard) mayPing(tenant string, now time.Time, window time.Duration) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if last, ok := g.pinged[tenant]; ok && now.Sub(last) < window {
		return false
	}
	for t, at := range g.pinged { // bounded by the tenants pinged in a window
		if now.Sub(at) >= window {
			delete(g.pinged, t)
		}
	}
	g.pinged[tenant] = now
	return true
}

// Drift check outcomes, the outcome label of ledger_ingest_auth_drift_checks_total.
const (
	driftConfirmed   = "confirmed"   // the shop refused Ledger's key too: binding token_revoked
	driftRefuted     = "refuted"     // the shop accepts Ledger's key: the refusals came from elsewhere
	driftUnconfirmed = "unconfirmed" // the shop did not answer the ping usefully
)

// plausibleShopToken reports whether tok looks like the tenant's shop signed
// it, its signature aside: the claims the shop's Signer always sets, for this
// tenant, valid at now.
func plausibleShopToken(tok *magento.Token, tenant string, now time.Time) bool {
	c := tok.Claims
	lw := int64(magento.Leeway / time.Second)
	n := now.Unix()
	return c.Iss == magento.IssuerMagento && c.Aud == magento.AudienceLedger && c.Sub == tenant && c.Jti != "" &&
		c.Exp > n-lw && c.Nbf <= n+lw && c.Iat <= n+lw && c.Exp > c.Iat &&
		// In uint64: exp-iat overflows int64 for absurd times.
		uint64(c.Exp)-uint64(c.Iat) <= uint64(magento.MaxTokenLifetime/time.Second)
}

// refusedAsDrift records a delivery of tenant refused with a signature that
// does not match (authError.drift) and, at the threshold, confirms the drift
// with a ping and flips the binding. Failures are logged, never returned: the
// shop gets its 401 whatever happens here.
func (s *Service) refusedAsDrift(ctx context.Context, tenant, reason string, at time.Time) {
	if !s.drift.shouldRecord(tenant, at) {
		return // a flood: the count is at its cap, recorded within the second
	}
	n, err := s.st.RecordUnauthorized(ctx, store.Refusal{TenantID: tenant, At: at, Reason: reason,
		Window: s.cfg.AuthDriftWindow, Keep: s.cfg.AuthDriftThreshold})
	if err != nil {
		s.log.WarnContext(ctx, "ingest: could not record an unauthorized delivery", "tenant", tenant, "err", err)
		return
	}
	if n < s.cfg.AuthDriftThreshold {
		return
	}
	s.drift.atThreshold(tenant, at)
	if !s.drift.mayPing(tenant, s.now(), s.cfg.AuthDriftWindow) {
		return
	}
	t, err := s.st.Tenant(ctx, tenant)
	if err != nil || t.Binding.MagentoConnectionStatus != store.StatusActive || t.Binding.APIKey == "" {
		return // not found, unpaired or already flipped meanwhile
	}
	pctx, cancel := context.WithTimeout(ctx, shopPingTimeout)
	defer cancel()
	c := &magento.Client{BaseURL: t.Binding.MagentoBaseURL, TenantID: tenant, APIKey: t.Binding.APIKey, HTTP: s.shopHTTP}
	perr := c.Ping(pctx)
	log := s.log.With("tenant", tenant, "refused", n, "window", s.cfg.AuthDriftWindow.String(), "reason", reason)
	switch {
	case perr == nil:
		s.metrics.drift.WithLabelValues(driftRefuted).Inc()
		log.WarnContext(ctx, "ingest: deliveries keep failing their signature, but the shop accepts Ledger's key: not drift; "+
			"someone else is sending this tenant's webhooks with another key (a second installation, a copied configuration, or a probe)")
	case magento.IsStatus(perr, http.StatusUnauthorized):
		if err := s.st.SetMagentoStatus(ctx, tenant, store.StatusTokenRevoked); err != nil {
			s.drift.forget(tenant) // try again at the next refusal
			log.WarnContext(ctx, "ingest: auth drift confirmed but the binding could not be marked token_revoked", "err", err)
			return
		}
		s.metrics.drift.WithLabelValues(driftConfirmed).Inc()
		log.ErrorContext(ctx, "ingest: auth drift: the shop's webhooks fail their signature and the shop refuses Ledger's key; "+
			"binding marked token_revoked: re-pair the shop")
	default:
		s.metrics.drift.WithLabelValues(driftUnconfirmed).Inc()
		log.WarnContext(ctx, "ingest: deliveries keep failing their signature; the shop's ping did not confirm drift; nothing changed",
			"ping_err", perr)
	}
}

// forget lets tenant's shop be pinged again at once.
func (g *driftGuard) forget(tenant string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.pinged, tenant)
}

// shopPingTimeout bounds the drift ping; the refused delivery waits for it.
const shopPingTimeout = 5 * time.Second

// defaultShopHTTP is the client that pings shops when Config.ShopHTTP is nil.
func defaultShopHTTP() *http.Client {
	return telemetry.HTTPClient(&http.Client{Timeout: 10 * time.Second})
}
