package admin

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/shophealth"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// shopHealth is what Ledger can tell about a tenant's shop from the webhooks
// it receives (libs/shophealth judges it; ingest's tile says the same): the
// last delivery accepted, the recent deliveries refused as unauthorized, and
// a verdict with what to do. Silent after Config.ShopSilentAfter
// (LEDGER_SHOP_SILENT_AFTER). nil when the store cannot be read: the tenant
// is still listed, and the failure logged.
func (s *Service) shopHealth(ctx context.Context, t store.Tenant) *ledgerv1.ShopHealth {
	act, err := s.st.ShopActivity(ctx, t.ID)
	if err != nil {
		s.log.WarnContext(ctx, "admin: could not read the shop's activity; shop_health left out", "tenant_id", t.ID, "err", err)
		return nil
	}
	return shopHealthProto(t, act, time.Now(), s.cfg.ShopSilentAfter)
}

// shopHealthProto judges act for t at now.
func shopHealthProto(t store.Tenant, act store.ShopActivity, now time.Time, silentAfter time.Duration) *ledgerv1.ShopHealth {
	h := shophealth.Judge(shophealth.Facts{
		MagentoStatus: t.Binding.MagentoConnectionStatus, Paired: t.Binding.APIKey != "",
		LastWebhookAt: act.LastWebhookAt, UnauthorizedRecent: act.UnauthorizedRecent,
		LastUnauthorizedAt: act.LastUnauthorizedAt, Now: now,
	}, silentAfter)
	out := &ledgerv1.ShopHealth{Verdict: h.Verdict, Message: h.Message, UnauthorizedRecent: int32(min(act.UnauthorizedRecent, 1<<31-1))}
	if !act.LastWebhookAt.IsZero() {
		out.LastWebhookAt = timestamppb.New(act.LastWebhookAt)
	}
	if !act.LastUnauthorizedAt.IsZero() {
		out.LastUnauthorizedAt = timestamppb.New(act.LastUnauthorizedAt)
	}
	return out
}
