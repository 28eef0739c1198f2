package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// APIKeyPrefix starts every generated Magento api key, so a leaked key is
// recognisable in a secret scanner.
const APIKeyPrefix = "byte8_lk_"

// Pairing outcomes recorded in pairing_attempts and counted in metrics.
const (
	pairOK          = "ok"
	pairRefused     = "refused"      // 401: code wrong, expired or used
	pairInvalid     = "invalid"      // 400 from the shop
	pairUnreachable = "unreachable"  // network error or 5xx
	pairNoEndpoint  = "no_endpoint"  // 404 and other unexpected answers
	pairPingFailed  = "ping_failed"  // paired, but the signed ping failed
	pairStoreFailed = "store_failed" // paired and pinged, but the key could not be stored
)

// Messages operators act on.
const (
	msgBadShopURL  = "shop_url must be an absolute http(s) URL such as https://shop.example.com"
	msgCodeRefused = "the shop refused the pairing code: it is wrong, expired (codes last 30 minutes) or already used; " +
		"generate a new code in the Magento admin (Stores → Configuration → Byte8 → Sage Accounting) and try again"
)

// NewAPIKey returns a fresh 256-bit master secret for a shop, as an opaque
// string: APIKeyPrefix + unpadded base64url.
func NewAPIKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("admin: generating an api key: %w", err)
	}
	return APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// normalizeShopURL checks that raw is an absolute http(s) URL with a host and no
// query or fragment, and strips trailing slashes.
func normalizeShopURL(raw string) (string, bool) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", false
	}
	return strings.TrimRight(raw, "/"), true
}

// ConnectMagento pairs a shop: it generates an api key, calls the shop's
// anonymous setup/pair with the operator's pairing code (forwarded verbatim,
// only trimmed), then pings with a signed request. Every attempt is recorded.
func (s *Service) ConnectMagento(ctx context.Context, req *ledgerv1.ConnectMagentoRequest) (*ledgerv1.ConnectMagentoResponse, error) {
	t, err := s.tenant(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	shopURL, ok := normalizeShopURL(req.GetShopUrl())
	if !ok {
		return nil, status.Error(codes.InvalidArgument, msgBadShopURL)
	}
	// Magento hashes the exact trimmed string: no case or dash changes.
	code := strings.TrimSpace(req.GetPairingCode())
	if code == "" {
		return nil, status.Error(codes.InvalidArgument,
			"pairing_code is required: generate one in the Magento admin (Stores → Configuration → Byte8 → Sage Accounting)")
	}
	apiKey, err := NewAPIKey()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	log := s.log.With("tenant_id", t.ID, "shop_url", shopURL)

	pairErr := magento.Pair(ctx, s.hc, shopURL, magento.PairRequest{
		PairingCode: code, TenantID: t.ID, APIKey: apiKey, LedgerBaseURL: s.cfg.LedgerBaseURL,
	})
	if pairErr != nil {
		outcome, st := classifyPairError(ctx, shopURL, pairErr)
		s.recordPairing(ctx, t.ID, shopURL, outcome, pairErr.Error())
		log.WarnContext(ctx, "magento pairing failed", "outcome", outcome, "err", pairErr)
		return nil, st.Err()
	}

	client := magento.Client{BaseURL: shopURL, TenantID: t.ID, APIKey: apiKey, HTTP: s.hc}
	if pingErr := client.Ping(ctx); pingErr != nil {
		// The shop now holds this key and the code is spent. Keep the key so the
		// shop's webhooks verify, but leave the binding pending: it is not proven.
		if err := s.st.SetMagentoPaired(ctx, t.ID, shopURL, apiKey); err == nil {
			_ = s.st.SetMagentoStatus(ctx, t.ID, store.StatusPending)
		}
		s.recordPairing(ctx, t.ID, shopURL, pairPingFailed, pingErr.Error())
		log.WarnContext(ctx, "magento paired but ping failed", "err", pingErr)
		return nil, status.Error(codes.FailedPrecondition, pingFailedMessage(shopURL, pingErr))
	}

	if err := s.st.SetMagentoPaired(ctx, t.ID, shopURL, apiKey); err != nil {
		s.recordPairing(ctx, t.ID, shopURL, pairStoreFailed, err.Error())
		return nil, s.storeErr(ctx, "store the pairing (the shop is paired: generate a new code and connect again)", err)
	}
	s.recordPairing(ctx, t.ID, shopURL, pairOK, "paired and pinged")
	log.InfoContext(ctx, "magento paired")
	t, err = s.st.Tenant(ctx, t.ID)
	if err != nil {
		return nil, s.storeErr(ctx, "load tenant", err)
	}
	return &ledgerv1.ConnectMagentoResponse{Tenant: s.tenantProto(t)}, nil
}

// classifyPairError maps a setup/pair failure to an outcome and a gRPC status.
func classifyPairError(ctx context.Context, shopURL string, err error) (string, *status.Status) {
	var he *magento.HTTPError
	switch {
	case errors.As(err, &he) && he.Status == http.StatusUnauthorized:
		return pairRefused, status.New(codes.FailedPrecondition, msgCodeRefused)
	case errors.As(err, &he) && he.Status == http.StatusBadRequest:
		return pairInvalid, status.New(codes.InvalidArgument, "the shop rejected the pairing request: "+he.Message)
	case errors.As(err, &he) && (he.Status >= 500 || he.Status == http.StatusTooManyRequests):
		return pairUnreachable, status.New(codes.Unavailable, fmt.Sprintf(
			"the shop at %s answered HTTP %d (%s): it is down or overloaded; try again later", shopURL, he.Status, he.Message))
	case errors.As(err, &he) && he.Status == http.StatusNotFound:
		return pairNoEndpoint, status.New(codes.FailedPrecondition, fmt.Sprintf(
			"%s has no Byte8 pairing endpoint (HTTP 404 on /rest/V1/byte8/setup/pair): check that shop_url is the storefront base URL "+
				"and that the Byte8 Sage Accounting module is installed and enabled", shopURL))
	case errors.As(err, &he):
		return pairNoEndpoint, status.New(codes.FailedPrecondition, fmt.Sprintf(
			"the shop answered HTTP %d to the pairing request: %s", he.Status, he.Message))
	case ctx.Err() != nil:
		return pairUnreachable, status.New(codes.DeadlineExceeded, fmt.Sprintf("cannot reach the shop at %s: %v", shopURL, ctx.Err()))
	}
	return pairUnreachable, status.New(codes.Unavailable, fmt.Sprintf(
		"cannot reach the shop at %s: %v; check the URL, DNS and that the shop accepts connections from Ledger", shopURL, errors.Unwrap(err)))
}

// pingFailedMessage explains a failed post-pairing ping.
func pingFailedMessage(shopURL string, err error) string {
	var he *magento.HTTPError
	cause := err.Error()
	if errors.As(err, &he) {
		cause = fmt.Sprintf("HTTP %d: %s", he.Status, he.Message)
	}
	msg := fmt.Sprintf("the shop accepted the pairing code, but the signed ping to %s/rest/V1/byte8/ping failed (%s). ", shopURL, cause)
	if errors.As(err, &he) && he.Status == http.StatusUnauthorized {
		msg += "The shop refused Ledger's token: check that the shop's clock is within a minute of UTC, that the shop is reached over https " +
			"(Magento refuses API tokens over plain http in production mode), and that the module shows Connected in " +
			"Stores → Configuration → Byte8 → Sage Accounting. "
	} else {
		msg += "Check that the shop is reachable and the Byte8 modules are up to date. "
	}
	return msg + "The binding stays pending; after fixing the cause, generate a new code and connect again."
}

func (s *Service) recordPairing(ctx context.Context, tenantID, shopURL, outcome, message string) {
	s.metrics.pairings.WithLabelValues(outcome).Inc()
	// Record even when the caller has gone: the attempt happened.
	if err := s.st.RecordPairingAttempt(context.WithoutCancel(ctx), tenantID, shopURL, outcome, message); err != nil {
		s.log.ErrorContext(ctx, "recording pairing attempt", "tenant_id", tenantID, "err", err)
	}
}

// DisconnectMagento revokes the Magento binding: the api key is forgotten, so
// the shop's signed traffic is refused until it is paired again. entity_xref is
// kept, so reconnecting never duplicates Sage documents.
func (s *Service) DisconnectMagento(ctx context.Context, req *ledgerv1.DisconnectMagentoRequest) (*ledgerv1.DisconnectMagentoResponse, error) {
	t, err := s.tenant(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	if err := s.st.SetMagentoStatus(ctx, t.ID, store.StatusRevoked); err != nil {
		return nil, s.storeErr(ctx, "disconnect", err)
	}
	s.log.InfoContext(ctx, "magento disconnected", "tenant_id", t.ID)
	if t, err = s.st.Tenant(ctx, t.ID); err != nil {
		return nil, s.storeErr(ctx, "load tenant", err)
	}
	return &ledgerv1.DisconnectMagentoResponse{Tenant: s.tenantProto(t)}, nil
}
