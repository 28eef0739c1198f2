package main

// Shop-side health end to end with the Magento simulator: a shop that sends
// and then stops is called silent (GetTenant and the shop's tile), and a shop
// whose api key drifted has its webhooks refused until ingest, at the
// threshold, confirms the drift with a ping and flips the binding to
// token_revoked; re-pairing with a fresh code makes its webhooks accepted
// again and the verdict ok.

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/admin"
	"github.com/ledgersync/ledger/services/ingest"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

func TestShopHealthEndToEnd(t *testing.T) {
	// Its own stack: it runs beside the other heavy end-to-end tests.
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	const (
		tenant      = "health-shop"
		silentAfter = 3 * time.Second
		threshold   = 3
	)
	st, _ := startStack(t, ctx, stack.Options{
		IngestConfig: func(c *ingest.Config) {
			c.ShopSilentAfter, c.ActivityFlushEvery = silentAfter, 200*time.Millisecond
			c.AuthDriftThreshold, c.AuthDriftWindow = threshold, time.Minute
		},
		AdminConfig: func(c *admin.Config) { c.ShopSilentAfter = silentAfter },
	})
	defer st.Close()
	if err := st.Onboard(ctx, tenant, "Health shop"); err != nil {
		t.Fatalf("onboarding: %v", err)
	}
	ops, stopOps, err := st.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer stopOps()
	rng := rand.New(rand.NewPCG(9, 13))

	health := func() *ledgerv1.ShopHealth {
		t.Helper()
		res, err := ops.GetTenant(ctx, &ledgerv1.GetTenantRequest{TenantId: tenant})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetTenant().GetShopHealth()
	}
	waitVerdict := func(want string) *ledgerv1.ShopHealth {
		t.Helper()
		var last *ledgerv1.ShopHealth
		devtest.Eventually(t, "GetTenant's verdict "+want, func() bool {
			last = health()
			return last.GetVerdict() == want
		}, devtest.Within(time.Minute))
		return last
	}
	// tile is GET /v1/tile/health as the shop's admin page calls it, signed
	// with the key Ledger holds for the tenant.
	tile := func() (code int, body map[string]any) {
		t.Helper()
		tn, err := st.Store.Tenant(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := magento.MintOutbound(tn.Binding.APIKey, tenant, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, st.IngestURL+"/v1/tile/health", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode == http.StatusOK {
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("tile %s: %v", raw, err)
			}
		}
		return res.StatusCode, body
	}
	tileVerdict := func(body map[string]any) string {
		h, _ := body["health"].(map[string]any)
		v, _ := h["verdict"].(string)
		return v
	}
	var expected []stack.Expected
	newCustomers := func(n int) {
		t.Helper()
		for range n {
			c, err := st.Shop.UpsertCustomer(magentosim.RandomCustomer(rng))
			if err != nil {
				t.Fatal(err)
			}
			expected = append(expected, stack.Expected{EntityType: "customer", MagentoID: c.MagentoID, Status: "synced"})
		}
	}

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	step("paired, nothing sent yet: never_sent", func(t *testing.T) {
		if sh := health(); sh.GetVerdict() != "never_sent" || sh.GetLastWebhookAt() != nil {
			t.Fatalf("right after pairing: %v", sh)
		}
	})

	step("the shop sends: ok, then stops: silent on GetTenant and the tile", func(t *testing.T) {
		newCustomers(2)
		settle(t, ctx, st, expected, "the first customers")
		sh := waitVerdict("ok")
		if sh.GetLastWebhookAt() == nil || time.Since(sh.GetLastWebhookAt().AsTime()) > time.Minute {
			t.Fatalf("last_webhook_at %v", sh.GetLastWebhookAt())
		}
		if code, body := tile(); code != http.StatusOK || tileVerdict(body) != "ok" {
			t.Fatalf("tile %d %v", code, body)
		}
		// The shop's cron keeps running, but nothing new is raised: after
		// silentAfter the shop is silent.
		sh = waitVerdict("silent")
		if msg := sh.GetMessage(); !strings.Contains(msg, "cron:run --group=default") || !strings.Contains(msg, "docs/relay.md") {
			t.Fatalf("silent message %q names neither the cron nor the relay", msg)
		}
		code, body := tile()
		sync, _ := body["sync"].(map[string]any)
		if code != http.StatusOK || tileVerdict(body) != "silent" || sync["last_webhook_at"] == nil || sync["dead_letter_count"] != 0.0 {
			t.Fatalf("tile while silent: %d %v", code, body)
		}
		// It sends again.
		newCustomers(1)
		settle(t, ctx, st, expected, "a customer after the silence")
		waitVerdict("ok")
	})

	step("the shop's key drifts: webhooks refused, binding token_revoked at the threshold", func(t *testing.T) {
		if err := st.Shop.SetAPIKey("byte8_lk_pasted_from_another_ledger"); err != nil {
			t.Fatal(err)
		}
		before := st.Shop.OutboxCounts().DeadLettered
		newCustomers(threshold)
		devtest.Eventually(t, "the shop to dead-letter its refused rows", func() bool {
			return st.Shop.OutboxCounts().DeadLettered >= before+threshold
		}, devtest.Within(time.Minute))
		for _, r := range st.Shop.Outbox() {
			if r.Status == magentosim.StatusDeadLettered && (r.LastStatusCode == nil || *r.LastStatusCode != http.StatusUnauthorized) {
				t.Fatalf("row %s dead-lettered with %v, want 401", r.IdempotencyKey, r.LastStatusCode)
			}
		}
		tn, err := st.Store.Tenant(ctx, tenant)
		if err != nil || tn.Binding.MagentoConnectionStatus != store.StatusTokenRevoked {
			t.Fatalf("after %d refused webhooks the binding is %q (%v), want token_revoked", threshold, tn.Binding.MagentoConnectionStatus, err)
		}
		sh := waitVerdict("auth_drift")
		if sh.GetUnauthorizedRecent() < threshold || sh.GetLastUnauthorizedAt() == nil || !strings.Contains(sh.GetMessage(), "re-pair") {
			t.Fatalf("auth drift health: %v", sh)
		}
		code, body := tile()
		if tenantPart, _ := body["tenant"].(map[string]any); code != http.StatusOK || tileVerdict(body) != "auth_drift" ||
			tenantPart["magento_connection_status"] != store.StatusTokenRevoked {
			t.Fatalf("tile after the drift: %d %v", code, body)
		}
		res, err := http.Get(st.IngestURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		m, _ := io.ReadAll(res.Body)
		if !strings.Contains(string(m), `ledger_ingest_auth_drift_checks_total{outcome="confirmed"} 1`) {
			t.Errorf("ingest's metrics lack the confirmed drift check")
		}
	})

	step("re-pair with a fresh code: webhooks accepted, verdict ok", func(t *testing.T) {
		resp, err := ops.ConnectMagento(ctx, &ledgerv1.ConnectMagentoRequest{TenantId: tenant, ShopUrl: st.ShopURL, PairingCode: st.Shop.GeneratePairingCode()})
		if err != nil {
			t.Fatalf("re-pairing: %v", err)
		}
		if s := resp.GetTenant().GetMagentoConnectionStatus(); s != store.StatusActive {
			t.Fatalf("after re-pairing Magento is %s", s)
		}
		// The merchant requeues the rows that dead-lettered meanwhile.
		if n := st.Shop.RequeueAll(); n < threshold {
			t.Fatalf("requeued %d rows, want at least %d", n, threshold)
		}
		settle(t, ctx, st, expected, "the requeued customers after re-pairing")
		devtest.Eventually(t, "verdict ok with no recent refusals", func() bool {
			sh := health()
			return sh.GetVerdict() == "ok" && sh.GetUnauthorizedRecent() == 0
		}, devtest.Within(time.Minute))
		if code, body := tile(); code != http.StatusOK || tileVerdict(body) != "ok" {
			t.Fatalf("tile after re-pairing: %d %v", code, body)
		}
	})
}
