package stack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// AddShop starts one more simulated Magento shop, served on its own loopback
// port and drained like Shop until Close, for runs with several tenants (each
// paired with its own shop). cfg.Logger defaults to the stack's log, tagged
// with name.
func (s *Stack) AddShop(name string, cfg magentosim.Config) (*magentosim.Shop, string, error) {
	if cfg.Logger == nil {
		cfg.Logger = s.Log.With("component", name)
	}
	shop := magentosim.New(cfg)
	shopURL, err := s.serve(name, shop.Handler())
	if err != nil {
		return nil, "", err
	}
	s.goRun(name+" drain", shop.Run)
	return shop, shopURL, nil
}

// OnboardShop is Onboard for any shop of the stack: it creates the tenant,
// pairs shop (served at shopURL) through the AdminService, then connects
// Sage through the authorization-code flow approved by the simulator's user
// sageUser (each user has businesses of its own; "" is the default user, whose
// lead business is Sage.LeadBusinessID()).
func (s *Stack) OnboardShop(ctx context.Context, tenantID, name string, shop *magentosim.Shop, shopURL, sageUser string) error {
	admin, closeConn, err := s.Admin()
	if err != nil {
		return err
	}
	defer closeConn()
	if _, err := admin.CreateTenant(ctx, &ledgerv1.CreateTenantRequest{TenantId: tenantID, Name: name}); err != nil {
		return fmt.Errorf("create tenant: %w", err)
	}
	code := shop.GeneratePairingCode()
	if _, err := admin.ConnectMagento(ctx, &ledgerv1.ConnectMagentoRequest{TenantId: tenantID, ShopUrl: shopURL, PairingCode: code}); err != nil {
		return fmt.Errorf("pair the shop: %w", err)
	}
	start, err := admin.StartSageConnect(ctx, &ledgerv1.StartSageConnectRequest{TenantId: tenantID})
	if err != nil {
		return fmt.Errorf("start the Sage connection: %w", err)
	}
	// The browser's part: open the authorize URL; Sage (the simulator) approves
	// and redirects to the admin's callback, which exchanges the code.
	authorize := start.AuthorizeUrl
	if sageUser != "" {
		u, err := url.Parse(authorize)
		if err != nil {
			return fmt.Errorf("authorize URL: %w", err)
		}
		q := u.Query()
		q.Set("sim_user", sageUser)
		u.RawQuery = q.Encode()
		authorize = u.String()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authorize, nil)
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
