package admin_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/admin"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

func newShop(t *testing.T, cfg magentosim.Config) (*magentosim.Shop, string) {
	t.Helper()
	shop := magentosim.New(cfg)
	srv := httptest.NewServer(shop.Handler())
	t.Cleanup(srv.Close)
	return shop, srv.URL
}

func (h *harness) pairingOutcomes(t *testing.T, tenant string) []string {
	t.Helper()
	rows, err := h.st.Pool().Query(t.Context(), `SELECT outcome FROM pairing_attempts WHERE tenant_id = $1 ORDER BY id`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

func TestConnectMagentoPairsPingsAndDisconnects(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "acme")
	shop, shopURL := newShop(t, magentosim.Config{})
	code := shop.GeneratePairingCode()

	resp, err := h.client.ConnectMagento(h.ctx(t), &ledgerv1.ConnectMagentoRequest{
		TenantId: "acme", ShopUrl: " " + shopURL + "/ ", PairingCode: "  " + code + "\n"})
	if err != nil {
		t.Fatalf("ConnectMagento: %v", err)
	}
	if got := resp.GetTenant(); got.GetMagentoConnectionStatus() != store.StatusActive || got.GetMagentoBaseUrl() != shopURL {
		t.Fatalf("tenant after connect: %v", got)
	}
	if !shop.Connected() || shop.TenantID() != "acme" || shop.BaseURL() != testLedgerURL {
		t.Fatalf("shop: connected=%t tenant=%q base=%q", shop.Connected(), shop.TenantID(), shop.BaseURL())
	}
	tn, err := h.st.Tenant(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tn.Binding.APIKey, admin.APIKeyPrefix) || len(tn.Binding.APIKey) != len(admin.APIKeyPrefix)+43 {
		t.Fatalf("stored api key %q is not prefix + 43 base64url characters", tn.Binding.APIKey)
	}
	// The stored key is the one the shop holds: a signed ping works.
	c := magento.Client{BaseURL: tn.Binding.MagentoBaseURL, TenantID: "acme", APIKey: tn.Binding.APIKey}
	if err := c.Ping(t.Context()); err != nil {
		t.Fatalf("ping with the stored key: %v", err)
	}
	if got := h.pairingOutcomes(t, "acme"); strings.Join(got, ",") != "ok" {
		t.Fatalf("pairing attempts %v, want [ok]", got)
	}

	// The code is single use.
	_, err = h.client.ConnectMagento(h.ctx(t), &ledgerv1.ConnectMagentoRequest{TenantId: "acme", ShopUrl: shopURL, PairingCode: code})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "already used") ||
		!strings.Contains(status.Convert(err).Message(), "Stores → Configuration → Byte8 → Sage Accounting") {
		t.Fatalf("reused code: got %v, want FailedPrecondition explaining the code", err)
	}
	if got := h.pairingOutcomes(t, "acme"); strings.Join(got, ",") != "ok,refused" {
		t.Fatalf("pairing attempts %v, want [ok refused]", got)
	}
	if tn2, _ := h.st.Tenant(t.Context(), "acme"); tn2.Binding.APIKey != tn.Binding.APIKey {
		t.Fatal("a refused pairing changed the stored key")
	}

	// Disconnect revokes the binding and forgets the key.
	dr, err := h.client.DisconnectMagento(h.ctx(t), &ledgerv1.DisconnectMagentoRequest{TenantId: "acme"})
	if err != nil {
		t.Fatalf("DisconnectMagento: %v", err)
	}
	if dr.GetTenant().GetMagentoConnectionStatus() != store.StatusRevoked {
		t.Fatalf("after disconnect: %v", dr.GetTenant())
	}
	if tn, _ := h.st.Tenant(t.Context(), "acme"); tn.Binding.APIKey != "" {
		t.Fatal("the api key survived the disconnect")
	}

	// Reconnecting with a fresh code works again (rotation path).
	if _, err := h.client.ConnectMagento(h.ctx(t), &ledgerv1.ConnectMagentoRequest{
		TenantId: "acme", ShopUrl: shopURL, PairingCode: shop.GeneratePairingCode()}); err != nil {
		t.Fatalf("reconnect: %v", err)
	}
}

func TestConnectMagentoForwardsCodeVerbatim(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "upper")
	shop, shopURL := newShop(t, magentosim.Config{})
	code := shop.GeneratePairingCode()
	// Magento hashes the exact string: an upper-cased code is a different code.
	_, err := h.client.ConnectMagento(h.ctx(t), &ledgerv1.ConnectMagentoRequest{
		TenantId: "upper", ShopUrl: shopURL, PairingCode: strings.ToUpper(code)})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("upper-cased code: got %v, want FailedPrecondition", err)
	}
	if shop.Connected() {
		t.Fatal("the shop paired with a changed code")
	}
}

func TestConnectMagentoRejectsBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "bad")
	for _, u := range []string{"shop.example.com", "ftp://shop.example.com", "https://", "https://shop.example.com/?x=1", ""} {
		_, err := h.client.ConnectMagento(h.ctx(t), &ledgerv1.ConnectMagentoRequest{TenantId: "bad", ShopUrl: u, PairingCode: "abc"})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "shop_url must be an absolute http(s) URL") {
			t.Errorf("shop_url %q: got %v, want InvalidArgument naming shop_url", u, err)
		}
	}
	_, err := h.client.ConnectMagento(h.ctx(t), &ledgerv1.ConnectMagentoRequest{TenantId: "bad", ShopUrl: "https://shop.example.com", PairingCode: "  "})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "pairing_code") {
		t.Errorf("empty code: got %v", err)
	}
	_, err = h.client.ConnectMagento(h.ctx(t), &ledgerv1.ConnectMagentoRequest{TenantId: "nobody", ShopUrl: "https://shop.example.com", PairingCode: "abc"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown tenant: got %v, want NotFound", err)
	}
}

func TestConnectMagentoUnreachableShop(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "gone")
	dead := httptest.NewServer(nil)
	deadURL := dead.URL
	dead.Close()
	_, err := h.client.ConnectMagento(h.ctx(t), &ledgerv1.ConnectMagentoRequest{TenantId: "gone", ShopUrl: deadURL, PairingCode: "abc"})
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "cannot reach the shop at "+deadURL) {
		t.Fatalf("got %v, want Unavailable: cannot reach the shop", err)
	}
	t.Log(err)
	if got := h.pairingOutcomes(t, "gone"); strings.Join(got, ",") != "unreachable" {
		t.Fatalf("pairing attempts %v", got)
	}
}

func TestConnectMagentoPingFailsOnClockSkew(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "skew")
	// The shop's clock is an hour ahead: pairing works, Ledger's JWT looks expired.
	shop, shopURL := newShop(t, magentosim.Config{Now: func() time.Time { return time.Now().Add(time.Hour) }})
	_, err := h.client.ConnectMagento(h.ctx(t), &ledgerv1.ConnectMagentoRequest{
		TenantId: "skew", ShopUrl: shopURL, PairingCode: shop.GeneratePairingCode()})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "clock") {
		t.Fatalf("got %v, want FailedPrecondition mentioning the clock", err)
	}
	t.Log(err)
	tn, _ := h.st.Tenant(context.Background(), "skew")
	if tn.Binding.MagentoConnectionStatus != store.StatusPending || tn.Binding.APIKey == "" {
		t.Fatalf("after a failed ping: status %q, key kept %t", tn.Binding.MagentoConnectionStatus, tn.Binding.APIKey != "")
	}
	if got := h.pairingOutcomes(t, "skew"); strings.Join(got, ",") != "ping_failed" {
		t.Fatalf("pairing attempts %v", got)
	}
}

func TestConnectMagentoExpiredCode(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "late")
	var offset atomic.Int64 // the shop's clock runs ahead by this many nanoseconds
	shop, shopURL := newShop(t, magentosim.Config{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	code := shop.GeneratePairingCode()
	offset.Store(int64(31 * time.Minute)) // codes last 30 minutes
	_, err := h.client.ConnectMagento(h.ctx(t), &ledgerv1.ConnectMagentoRequest{TenantId: "late", ShopUrl: shopURL, PairingCode: code})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "expired (codes last 30 minutes)") ||
		!strings.Contains(err.Error(), "generate a new code") {
		t.Fatalf("expired code: got %v", err)
	}
	if got := h.pairingOutcomes(t, "late"); strings.Join(got, ",") != "refused" {
		t.Fatalf("pairing attempts %v", got)
	}
}
