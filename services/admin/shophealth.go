package admin

import (
	"context"

	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// shopHealth is what Ledger can tell about a tenant's shop from the webhooks
// it receives (nil while unknown).
func (s *Service) shopHealth(ctx context.Context, t store.Tenant) *ledgerv1.ShopHealth {
	return nil
}
