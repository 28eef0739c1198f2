package admin

import (
	"context"
	"net"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// SetSyncStateTransport chooses how statecallback delivers a tenant's sync
// states: http (the module's endpoint), grpc (a SyncStateService at
// grpc_target) or nats (the SHOP stream, which the tenant's relay applies to
// the shop's database: for a shop that takes no inbound calls).
func (s *Service) SetSyncStateTransport(ctx context.Context, req *ledgerv1.SetSyncStateTransportRequest) (*ledgerv1.SetSyncStateTransportResponse, error) {
	t, err := s.tenant(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	transport := strings.TrimSpace(req.GetTransport())
	target := strings.TrimSpace(req.GetGrpcTarget())
	switch transport {
	case store.TransportHTTP, store.TransportNATS:
		if target != "" {
			return nil, status.Errorf(codes.InvalidArgument, "grpc_target is only for transport grpc; leave it empty for %s", transport)
		}
	case store.TransportGRPC:
		if _, port, err := net.SplitHostPort(target); err != nil || port == "" {
			return nil, status.Errorf(codes.InvalidArgument, "grpc_target %q: give the SyncStateService address as host:port, e.g. shop.example.com:443", target)
		}
	default:
		return nil, status.Errorf(codes.InvalidArgument, "transport %q: use http (the module's REST endpoint), grpc (with grpc_target) or nats (the tenant's relay applies them)", transport)
	}
	if err := s.st.SetCallbackTransport(ctx, t.ID, transport, target); err != nil {
		return nil, s.storeErr(ctx, "set sync-state transport", err)
	}
	s.log.InfoContext(ctx, "sync-state transport set", "tenant_id", t.ID, "transport", transport, "grpc_target", target)
	if t, err = s.st.Tenant(ctx, t.ID); err != nil {
		return nil, s.storeErr(ctx, "load tenant", err)
	}
	return &ledgerv1.SetSyncStateTransportResponse{Tenant: s.tenantProto(t)}, nil
}
