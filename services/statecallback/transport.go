package statecallback

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/telemetry"
)

// Shop is where and as whom a sync state is delivered: one tenant's paired
// Magento binding.
type Shop struct {
	TenantID string
	BaseURL  string         // storefront base URL from pairing
	APIKey   secrets.String // master secret from pairing
	// GRPCTarget is the binding's SyncStateService address (host:port), used
	// by GRPCTransport only.
	GRPCTarget string
}

// Transport delivers sync states to shops. Implementations report failures as
// *DeliveryError when they know what the failure means; any other error is
// treated as transient (network, timeout).
type Transport interface {
	// SendSyncState upserts one row of the shop's sync-state mirror.
	SendSyncState(ctx context.Context, shop Shop, state magento.SyncState) error
	// Ping checks that the shop is reachable and accepts Ledger's credentials.
	Ping(ctx context.Context, shop Shop) error
}

// BatchTransport is a Transport that carries several rows in one call. The
// service sends a whole batch through it; a plain Transport gets one call per
// row.
type BatchTransport interface {
	Transport
	// SendSyncStates upserts states in one call. A non-nil err is the whole
	// call's failure (nothing stored); otherwise errs[i] is the outcome of
	// states[i] (nil: stored), classified like SendSyncState's errors.
	SendSyncStates(ctx context.Context, shop Shop, states []magento.SyncState) (errs []error, err error)
}

// FailureKind says what to do about a failed delivery.
type FailureKind int

// Failure kinds.
const (
	// Transient: retry with back-off (5xx, 429, timeouts, the "Could not
	// upsert" 400).
	Transient FailureKind = iota
	// Rejected: the shop refused this body and always will; dead-letter it.
	Rejected
	// Unauthorized: the shop refused Ledger's credentials (401).
	Unauthorized
)

func (k FailureKind) String() string {
	switch k {
	case Transient:
		return "transient"
	case Rejected:
		return "rejected"
	case Unauthorized:
		return "unauthorized"
	}
	return fmt.Sprintf("FailureKind(%d)", int(k))
}

// DeliveryError is a classified delivery failure.
type DeliveryError struct {
	Kind    FailureKind
	Status  int    // HTTP status (or the transport's equivalent), 0 when none
	Message string // the shop's own message, placeholders substituted
	// NotSaved: the shop took the call but its database did not store the
	// row (HTTP's "Could not upsert" 400, a gRPC entry marked retryable).
	NotSaved bool
	Err      error
}

func (e *DeliveryError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s delivery failure: %v", e.Kind, e.Err)
	}
	return fmt.Sprintf("%s delivery failure: HTTP %d: %s", e.Kind, e.Status, e.Message)
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// classify turns any transport error into a DeliveryError; unknown errors
// (connection refused, timeouts, resets) are transient.
func classify(err error) *DeliveryError {
	var de *DeliveryError
	if errors.As(err, &de) {
		return de
	}
	return &DeliveryError{Kind: Transient, Message: err.Error(), Err: err}
}

// SyncStatePath is the Magento REST route of the sync-state callback.
const SyncStatePath = "/V1/byte8/sync-state"

// HTTPTransport speaks the Magento REST wire with magento.Client: a fresh
// inbound JWT per request, JSON body, any 2xx (Magento answers 200 with body
// []) is success.
type HTTPTransport struct {
	HTTP *http.Client
	Now  func() time.Time // clock for the JWT; defaults to time.Now
}

// NewHTTPTransport returns an HTTPTransport whose calls time out after timeout;
// each call is a client span. It keeps up to perShop idle connections per shop
// (Go's default is 2), so a shop called perShop at a time reuses them instead
// of opening new ones.
func NewHTTPTransport(timeout time.Duration, perShop int) *HTTPTransport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(perShop, 2)
	return &HTTPTransport{HTTP: telemetry.HTTPClient(&http.Client{Timeout: timeout, Transport: tr})}
}

func (t *HTTPTransport) client(shop Shop) *magento.Client {
	return &magento.Client{BaseURL: shop.BaseURL, TenantID: shop.TenantID, APIKey: shop.APIKey.Reveal(), HTTP: t.HTTP, Now: t.Now}
}

// SendSyncState posts state to {shop}/rest/V1/byte8/sync-state.
func (t *HTTPTransport) SendSyncState(ctx context.Context, shop Shop, state magento.SyncState) error {
	return httpFailure(t.client(shop).Post(ctx, SyncStatePath, state, nil))
}

// Ping calls GET {shop}/rest/V1/byte8/ping.
func (t *HTTPTransport) Ping(ctx context.Context, shop Shop) error {
	return httpFailure(t.client(shop).Ping(ctx))
}

// httpFailure classifies a magento.Client error: 401 is auth drift;
// 5xx, 429, 408 and the sync-state "Could not upsert" 400 are transient; any
// other status is a refusal. Errors without a status stay unclassified
// (transient).
func httpFailure(err error) error {
	if err == nil {
		return nil
	}
	var he *magento.HTTPError
	if !errors.As(err, &he) {
		return err
	}
	de := &DeliveryError{Status: he.Status, Message: he.Message, NotSaved: he.NotSaved(), Err: err}
	switch {
	case he.Status == http.StatusUnauthorized:
		de.Kind = Unauthorized
	case he.Transient() || he.Status == http.StatusRequestTimeout:
		de.Kind = Transient
	default:
		de.Kind = Rejected
	}
	return de
}
