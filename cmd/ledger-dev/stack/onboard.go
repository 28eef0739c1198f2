package stack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

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
// through the admin's OAuth endpoints (the simulator auto-approves).
func (s *Stack) Onboard(ctx context.Context, tenantID, name string) error {
	admin, closeConn, err := s.Admin()
	if err != nil {
		return err
	}
	defer closeConn()
	if _, err := admin.CreateTenant(ctx, &ledgerv1.CreateTenantRequest{TenantId: tenantID, Name: name}); err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	code := s.Shop.GeneratePairingCode()
	if _, err := admin.ConnectMagento(ctx, &ledgerv1.ConnectMagentoRequest{TenantId: tenantID, ShopUrl: s.ShopURL, PairingCode: code}); err != nil {
		return fmt.Errorf("pair the shop: %w", err)
	}
	start, err := admin.StartSageConnect(ctx, &ledgerv1.StartSageConnectRequest{TenantId: tenantID})
	if err != nil {
		return fmt.Errorf("start the Sage connection: %w", err)
	}
	// The browser's part: open the authorize URL; Sage (the simulator) approves
	// and redirects to the admin's callback, which exchanges the code.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, start.AuthorizeUrl, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("sage authorization: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sage authorization callback answered HTTP %d: %s", resp.StatusCode, body)
	}
	got, err := admin.GetTenant(ctx, &ledgerv1.GetTenantRequest{TenantId: tenantID})
	if err != nil {
		return err
	}
	if got.Tenant.GetMagentoConnectionStatus() != "active" || got.Tenant.GetSageStatus() != "active" {
		return fmt.Errorf("tenant %s not fully connected: magento=%s sage=%s", tenantID,
			got.Tenant.GetMagentoConnectionStatus(), got.Tenant.GetSageStatus())
	}
	return nil
}
