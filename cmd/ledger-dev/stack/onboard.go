package stack

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// bearer sends the operator credential with every RPC. The dev stack listens
// on loopback only, so it allows plaintext.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

// Admin dials the AdminService as an operator (what ledgerctl does).
func (s *Stack) Admin() (ledgerv1.AdminServiceClient, func(), error) {
	conn, err := grpc.NewClient(s.AdminGRPCAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer(s.AdminToken)))
	if err != nil {
		return nil, nil, err
	}
	return ledgerv1.NewAdminServiceClient(conn), func() { _ = conn.Close() }, nil
}

// Onboard creates a tenant and connects both sides through the real flows, as
// an operator would: a pairing code generated in the Magento admin, pairing via
// the AdminService (setup/pair + ping), then Sage's authorization-code flow
// through the admin's OAuth endpoints (the simulator auto-approves). The
// tenant is paired with Shop and Sage's default user.
func (s *Stack) Onboard(ctx context.Context, tenantID, name string) error {
	return s.OnboardShop(ctx, tenantID, name, s.Shop, s.ShopURL, "")
}
