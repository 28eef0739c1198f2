package statecallback

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// GRPCTransport delivers sync states to a ledger.v1.SyncStateService (for
// receivers that are not the PHP module): one PushSyncState per batch, to the
// binding's CallbackGRPCTarget. Every call carries a fresh inbound JWT (the
// same token the REST routes take) as "authorization: Bearer" metadata.
//
// Connections are cached per target and shared by all tenants using it.
// Loopback targets are dialled in plaintext; any other target uses TLS with
// the system roots unless Plaintext is set.
type GRPCTransport struct {
	// Timeout bounds one call.
	Timeout time.Duration
	// Plaintext allows plaintext to targets that are not loopback.
	Plaintext bool
	// TLS is the client TLS configuration; nil means the system roots, TLS 1.2+.
	TLS *tls.Config
	// Now is the clock for the JWT; defaults to time.Now.
	Now func() time.Time

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// NewGRPCTransport returns a GRPCTransport whose calls time out after timeout.
func NewGRPCTransport(timeout time.Duration, plaintext bool) *GRPCTransport {
	return &GRPCTransport{Timeout: timeout, Plaintext: plaintext}
}

// Close closes every cached connection.
func (t *GRPCTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for target, cc := range t.conns {
		errs = append(errs, cc.Close())
		delete(t.conns, target)
	}
	return errors.Join(errs...)
}

// loopback reports whether target (host:port, optionally dns:/// prefixed)
// names this machine.
func loopback(target string) bool {
	host, _, err := net.SplitHostPort(strings.TrimPrefix(target, "dns:///"))
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (t *GRPCTransport) conn(target string) (*grpc.ClientConn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cc, ok := t.conns[target]; ok {
		return cc, nil
	}
	if _, _, err := net.SplitHostPort(strings.TrimPrefix(target, "dns:///")); err != nil {
		return nil, &DeliveryError{Kind: Rejected, Message: fmt.Sprintf("callback gRPC target %q is not host:port; fix the binding (ledgerctl)", target), Err: err}
	}
	var creds credentials.TransportCredentials
	switch {
	case loopback(target) || t.Plaintext:
		creds = insecure.NewCredentials()
	case t.TLS != nil:
		creds = credentials.NewTLS(t.TLS)
	default:
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	// Every PushSyncState is a client span; the trace travels in metadata.
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds), telemetry.GRPCDialOption())
	if err != nil {
		return nil, &DeliveryError{Kind: Rejected, Message: fmt.Sprintf("callback gRPC target %q: %v", target, err), Err: err}
	}
	if t.conns == nil {
		t.conns = map[string]*grpc.ClientConn{}
	}
	t.conns[target] = cc
	return cc, nil
}

func (t *GRPCTransport) push(ctx context.Context, shop Shop, states []magento.SyncState) (*ledgerv1.PushSyncStateResponse, error) {
	if shop.GRPCTarget == "" {
		return nil, &DeliveryError{Kind: Rejected, Message: "the binding's callback transport is grpc but it has no gRPC target"}
	}
	cc, err := t.conn(shop.GRPCTarget)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	tok, err := magento.MintInbound(shop.APIKey.Reveal(), shop.TenantID, now())
	if err != nil {
		return nil, fmt.Errorf("minting the inbound JWT: %w", err)
	}
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.Timeout)
		defer cancel()
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	resp, err := ledgerv1.NewSyncStateServiceClient(cc).PushSyncState(ctx, pushRequest(shop.TenantID, states))
	if err != nil {
		return nil, grpcFailure(err)
	}
	if len(resp.GetResults()) != len(states) {
		return nil, &DeliveryError{Kind: Transient, Message: fmt.Sprintf("receiver answered %d results for %d entries", len(resp.GetResults()), len(states))}
	}
	return resp, nil
}

// pushRequest is states as the SyncStateService (and the SHOP stream) carry
// them.
func pushRequest(tenantID string, states []magento.SyncState) *ledgerv1.PushSyncStateRequest {
	req := &ledgerv1.PushSyncStateRequest{TenantId: tenantID, Entries: make([]*ledgerv1.SyncStateEntry, len(states))}
	for i, s := range states {
		req.Entries[i] = &ledgerv1.SyncStateEntry{
			EntityType: s.EntityType, MagentoEntityId: s.MagentoEntityID, Provider: s.Provider, SyncStatus: s.SyncStatus,
			ProviderEntityId: deref(s.ProviderEntityID), ProviderReference: deref(s.ProviderReference),
			SkipReason: deref(s.SkipReason), ErrorCode: deref(s.ErrorCode), LastSyncAt: s.LastSyncAt,
		}
	}
	return req
}

// deref is the proto3 convention of the gRPC wire: null is "".
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// SendSyncStates pushes states in one PushSyncState call. Per entry: stored is
// success, retryable is Transient, any other refusal is Rejected.
func (t *GRPCTransport) SendSyncStates(ctx context.Context, shop Shop, states []magento.SyncState) ([]error, error) {
	resp, err := t.push(ctx, shop, states)
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(states))
	for i, r := range resp.GetResults() {
		switch {
		case r.GetStored():
		case r.GetRetryable():
			errs[i] = &DeliveryError{Kind: Transient, Message: r.GetError(), NotSaved: true}
		default:
			errs[i] = &DeliveryError{Kind: Rejected, Message: r.GetError()}
		}
	}
	return errs, nil
}

// SendSyncState pushes a batch of one.
func (t *GRPCTransport) SendSyncState(ctx context.Context, shop Shop, state magento.SyncState) error {
	errs, err := t.SendSyncStates(ctx, shop, []magento.SyncState{state})
	if err != nil {
		return err
	}
	return errs[0]
}

// Ping pushes an empty batch: the receiver authenticates it and stores nothing.
func (t *GRPCTransport) Ping(ctx context.Context, shop Shop) error {
	_, err := t.push(ctx, shop, nil)
	return err
}

// grpcFailure classifies a call's status. Unauthenticated and PermissionDenied
// (the receiver is paired with another tenant) are auth drift; codes a later
// call may not get are transient; the rest refuse the request itself. Status
// carries the HTTP equivalent for dead letters.
func grpcFailure(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	de := &DeliveryError{Message: st.Message(), Err: err}
	switch st.Code() {
	case codes.Unauthenticated:
		de.Kind, de.Status = Unauthorized, http.StatusUnauthorized
	case codes.PermissionDenied:
		de.Kind, de.Status = Unauthorized, http.StatusForbidden
	case codes.Unavailable, codes.Unknown, codes.Internal, codes.Aborted, codes.Canceled:
		de.Kind, de.Status = Transient, http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		de.Kind, de.Status = Transient, http.StatusGatewayTimeout
	case codes.ResourceExhausted:
		de.Kind, de.Status = Transient, http.StatusTooManyRequests
	default:
		de.Kind, de.Status = Rejected, http.StatusBadRequest
	}
	return de
}
