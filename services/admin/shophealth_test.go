package admin_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/admin"
)

// GetTenant and ListTenants carry the shop's health: not paired, never sent,
// ok, silent after ShopSilentAfter, auth drift once the binding is
// token_revoked, with the recent refusals ingest recorded.
func TestTenantShopHealth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *admin.Config) { c.ShopSilentAfter = time.Second })
	ctx := h.ctx(t)
	h.createTenant(t, "shop-1")
	verdict := func(want string) *ledgerv1.ShopHealth {
		t.Helper()
		res, err := h.client.GetTenant(ctx, &ledgerv1.GetTenantRequest{TenantId: "shop-1"})
		if err != nil {
			t.Fatal(err)
		}
		sh := res.GetTenant().GetShopHealth()
		if sh.GetVerdict() != want {
			t.Fatalf("verdict %q (%s), want %q", sh.GetVerdict(), sh.GetMessage(), want)
		}
		return sh
	}
	if sh := verdict("not_paired"); !strings.Contains(sh.GetMessage(), "pairing code") {
		t.Errorf("message %q", sh.GetMessage())
	}
	if err := h.st.SetMagentoPaired(ctx, "shop-1", "https://shop.example", "byte8_lk_key"); err != nil {
		t.Fatal(err)
	}
	if sh := verdict("never_sent"); sh.GetLastWebhookAt() != nil {
		t.Errorf("never sent, yet last_webhook_at %v", sh.GetLastWebhookAt())
	}
	now := time.Now()
	if err := h.st.TouchShops(ctx, map[string]time.Time{"shop-1": now}); err != nil {
		t.Fatal(err)
	}
	if sh := verdict("ok"); !sh.GetLastWebhookAt().AsTime().Equal(now.Truncate(time.Microsecond)) {
		t.Errorf("last_webhook_at %v, want %v", sh.GetLastWebhookAt().AsTime(), now)
	}
	devtest.Eventually(t, "the shop to be silent after 1s", func() bool {
		res, err := h.client.GetTenant(ctx, &ledgerv1.GetTenantRequest{TenantId: "shop-1"})
		return err == nil && res.GetTenant().GetShopHealth().GetVerdict() == "silent"
	})
	sh := verdict("silent")
	if !strings.Contains(sh.GetMessage(), "cron:run --group=default") || !strings.Contains(sh.GetMessage(), "docs/relay.md") {
		t.Errorf("silent message %q names neither the cron nor the relay", sh.GetMessage())
	}

	// Refusals ingest recorded, then the flip.
	refusedAt := time.Now()
	for i := range 2 {
		if _, err := h.st.RecordUnauthorized(ctx, store.Refusal{TenantID: "shop-1", At: refusedAt.Add(time.Duration(i) * time.Millisecond),
			Reason: "signature does not match the tenant's outbound key", Window: time.Hour, Keep: 5}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.st.SetMagentoStatus(ctx, "shop-1", store.StatusTokenRevoked); err != nil {
		t.Fatal(err)
	}
	sh = verdict("auth_drift")
	if sh.GetUnauthorizedRecent() != 2 || sh.GetLastUnauthorizedAt() == nil || !strings.Contains(sh.GetMessage(), "re-pair") {
		t.Errorf("drift: %v", sh)
	}
	list, err := h.client.ListTenants(ctx, &ledgerv1.ListTenantsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range list.GetTenants() {
		if tn.GetTenantId() == "shop-1" && tn.GetShopHealth().GetVerdict() != "auth_drift" {
			t.Errorf("ListTenants: %v", tn.GetShopHealth())
		}
	}
}

func TestShopSilentAfterSetting(t *testing.T) {
	t.Setenv("ADMIN_TOKEN", "shop-health-token-0123456789")
	t.Setenv("LEDGER_BASE_URL", "https://ledger.example.test")
	t.Setenv("LEDGER_SHOP_SILENT_AFTER", "2h")
	c, err := admin.ConfigFromEnv()
	if err != nil || c.ShopSilentAfter != 2*time.Hour {
		t.Fatalf("%v %v", c.ShopSilentAfter, err)
	}
	for _, bad := range []string{"500ms", "-1h", "later"} {
		t.Setenv("LEDGER_SHOP_SILENT_AFTER", bad)
		if _, err := admin.ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "LEDGER_SHOP_SILENT_AFTER") {
			t.Errorf("LEDGER_SHOP_SILENT_AFTER=%s: %v, want an error naming it", bad, err)
		}
	}
	t.Setenv("LEDGER_SHOP_SILENT_AFTER", "")
	if c, err := admin.ConfigFromEnv(); err != nil || c.ShopSilentAfter != 6*time.Hour {
		t.Fatalf("default: %v %v", c.ShopSilentAfter, err)
	}
}
