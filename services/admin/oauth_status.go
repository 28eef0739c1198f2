package admin

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// GetOAuthStatus describes a tenant's Sage connection for an operator probing
// Sage by hand (the seed's "live API probing"): binding, scopes, when the
// access token expires and when the pair was last refreshed. The access token
// is revealed only by a LEDGER_ENV=dev service; a production token never
// leaves the store.
func (s *Service) GetOAuthStatus(ctx context.Context, req *ledgerv1.GetOAuthStatusRequest) (*ledgerv1.GetOAuthStatusResponse, error) {
	if req.GetRevealToken() && s.cfg.Env != "dev" {
		return nil, status.Error(codes.PermissionDenied,
			"reveal_token is refused: this admin service runs with LEDGER_ENV="+s.cfg.Env+
				", and production access tokens are never revealed; probe Sage from a dev stack, or read the status without --reveal-token")
	}
	t, err := s.tenant(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	out := &ledgerv1.GetOAuthStatusResponse{
		Status: sageStatus(t.Binding.Status), BusinessId: t.Binding.SageBusinessID, Region: t.Binding.SageRegion,
	}
	tok, err := s.st.Tokens(ctx, t.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return out, nil // never connected, or disconnected: no tokens to describe
	case err != nil:
		return nil, s.storeErr(ctx, "load tokens", err)
	}
	out.Scopes = strings.Fields(tok.Scope)
	out.AccessExpiresAt = timestamppb.New(tok.AccessExpiresAt)
	if !tok.UpdatedAt.IsZero() {
		out.RefreshedAt = timestamppb.New(tok.UpdatedAt)
	}
	if req.GetRevealToken() {
		out.AccessToken = tok.Access
		s.log.WarnContext(ctx, "sage access token revealed to an operator (dev)", "tenant_id", t.ID)
	}
	return out, nil
}
