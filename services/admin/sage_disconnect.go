package admin

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/sage/lifecycle"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// DisconnectSage revokes the tenant's refresh token at Sage and deletes its
// tokens under the per-binding token lock (lifecycle.Revoke); the writer holds
// the tenant's writes until Sage is connected again. When Sage cannot be reached
// nothing changes, so the operator can simply try again.
func (s *Service) DisconnectSage(ctx context.Context, req *ledgerv1.DisconnectSageRequest) (*ledgerv1.DisconnectSageResponse, error) {
	t, err := s.tenant(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	if err := lifecycle.Revoke(ctx, s.st, s.oauth, t.ID); err != nil {
		s.log.WarnContext(ctx, "sage disconnect failed", "tenant_id", t.ID, "err", err)
		return nil, status.Errorf(codes.Unavailable, "%v: nothing was changed; try again when Sage answers", err)
	}
	s.log.InfoContext(ctx, "sage disconnected", "tenant_id", t.ID)
	if t, err = s.st.Tenant(ctx, t.ID); err != nil {
		return nil, s.storeErr(ctx, "load tenant", err)
	}
	return &ledgerv1.DisconnectSageResponse{Tenant: s.tenantProto(t)}, nil
}
