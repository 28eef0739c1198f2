package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/store"
)

// authError is a refused credential: always 401. Reason is safe to show the
// caller and to log (it never holds a key, a signature or a token).
type authError struct {
	Tenant string // the tenant the request claimed, when known; for logs
	Reason string
	// drift is set when the token is plausibly the paired shop's own (its
	// claims are right for the tenant) and only its signature fails: what a
	// shop holding another api key sends (drift.go counts these).
	drift bool
}

func (e *authError) Error() string { return "unauthorized: " + e.Reason }

// unavailableError is a transient failure (database, NATS, a full replay
// cache): always 503, so Magento keeps the row and retries.
type unavailableError struct {
	What string // shown to the caller, e.g. "database unavailable"
	Err  error
}

func (e *unavailableError) Error() string { return e.What + ": " + e.Err.Error() }
func (e *unavailableError) Unwrap() error { return e.Err }

// authenticate verifies a Magento → Ledger token (magento.VerifyOutbound, then
// the jti replay cache) and returns the tenant it speaks for. pathTenant, when
// not empty, is the {tenant} of a webhook URL: the token's sub must equal it.
// Otherwise sub names the tenant. The token is checked as of now; owner, when
// set, names the message carrying it (a relayed message's stream sequence),
// whose own redelivery is not a replay.
// Errors are *authError (401) or *unavailableError (503).
func (s *Service) authenticate(ctx context.Context, h http.Header, pathTenant string, now time.Time, owner string) (store.Tenant, error) {
	if len(h.Values("Authorization")) > 1 {
		// Which one counts would be a guess; a proxy may have added one.
		return store.Tenant{}, &authError{Reason: "Authorization header sent more than once; send one Bearer token"}
	}
	raw, ok := bearer(h.Get("Authorization"))
	if !ok {
		return store.Tenant{}, &authError{Reason: "missing Authorization: Bearer <token> header"}
	}
	tok, err := magento.Parse(raw)
	if err != nil {
		return store.Tenant{}, &authError{Reason: err.Error()}
	}
	tenantID := pathTenant
	if tenantID == "" {
		tenantID = tok.Claims.Sub
	}
	if store.ValidTenantID(tenantID) != nil {
		// It cannot be a paired tenant, so there is nothing to look up.
		return store.Tenant{}, &authError{Reason: "unknown tenant"}
	}
	t, err := s.st.Tenant(ctx, tenantID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Tenant{}, &authError{Tenant: tenantID, Reason: fmt.Sprintf("unknown tenant %q", tenantID)}
	case err != nil:
		return store.Tenant{}, &unavailableError{"database unavailable", err}
	case t.Binding.APIKey == "":
		return store.Tenant{}, &authError{Tenant: tenantID, Reason: fmt.Sprintf("tenant %q is not paired (never paired, disconnected or revoked); pair the shop again", tenantID)}
	}
	if err := magento.VerifyOutbound(tok, t.Binding.APIKey, tenantID, now); err != nil {
		reason := "token refused"
		var ve *magento.VerifyError
		if errors.As(err, &ve) {
			reason = ve.Reason
		}
		return store.Tenant{}, &authError{Tenant: tenantID, Reason: reason,
			drift: t.Binding.MagentoConnectionStatus == store.StatusActive &&
				!tok.SignatureValid(magento.Subkey(t.Binding.APIKey, magento.PurposeOutbound)) &&
				plausibleShopToken(tok, tenantID, now)}
	}
	first, err := s.replay.firstUse(ctx, tenantID, tok.Claims.Jti, owner)
	switch {
	case err != nil:
		return store.Tenant{}, &unavailableError{"too many recent tokens to check for replay", err}
	case !first:
		return store.Tenant{}, &authError{Tenant: tenantID, Reason: "token replayed: its jti was already used; mint a fresh token per request"}
	}
	return t, nil
}

// bearer extracts the token of an "Authorization: Bearer <token>" header; the
// scheme is case-insensitive (RFC 7235).
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
