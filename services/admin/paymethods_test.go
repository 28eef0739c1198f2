package admin_test

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// SetPolicy checks the Magento method codes it maps against the shop's own
// list (GET /V1/byte8/payment-methods): a typo is a form error naming the
// field, the code and the codes the shop has; inactive methods count; a shop
// that cannot answer is Unavailable; a tenant without a shop is not checked.
func TestSetPolicyChecksPaymentMethodsAgainstTheShop(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "acme")
	shop, shopURL := newShop(t, magentosim.Config{})
	if _, err := h.client.ConnectMagento(h.ctx(t), &ledgerv1.ConnectMagentoRequest{TenantId: "acme", ShopUrl: shopURL,
		PairingCode: shop.GeneratePairingCode()}); err != nil {
		t.Fatal(err)
	}
	h.connectSage(t, "acme")
	doc, _, err := h.st.RefCache(t.Context(), "acme", "bank_accounts")
	if err != nil {
		t.Fatal(err)
	}
	var banks []struct{ ID string }
	if err := json.Unmarshal(doc, &banks); err != nil || len(banks) == 0 {
		t.Fatalf("bank accounts %s: %v", doc, err)
	}
	base, err := h.client.GetPolicy(h.ctx(t), &ledgerv1.GetPolicyRequest{TenantId: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	withMaps := func(pm, spm map[string]string) string {
		var p map[string]any
		if err := json.Unmarshal([]byte(base.GetPolicyJson()), &p); err != nil {
			t.Fatal(err)
		}
		p["payment_method_map"], p["sage_payment_method_map"] = pm, spm
		b, _ := json.Marshal(p)
		return string(b)
	}
	bank := banks[0].ID

	_, err = h.client.SetPolicy(h.ctx(t), &ledgerv1.SetPolicyRequest{TenantId: "acme", PolicyJson: withMaps(
		map[string]string{"checkmo": bank, "chekmo": bank}, map[string]string{"paypal_expres": "CREDIT_DEBIT"})})
	msg := status.Convert(err).Message()
	if status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(msg, `payment_method_map["chekmo"]: "chekmo" is not a payment method of the shop`) ||
		!strings.Contains(msg, `sage_payment_method_map["paypal_expres"]`) ||
		!strings.Contains(msg, "(it has: banktransfer, cashondelivery, checkmo, free, paypal_express, purchaseorder, stripe_payments, substitution)") ||
		strings.Contains(msg, `["checkmo"]`) {
		t.Fatalf("unknown codes: %v", err)
	}
	good := withMaps(map[string]string{"checkmo": bank, "cashondelivery": ""}, map[string]string{"paypal_express": "CREDIT_DEBIT"})
	if _, err := h.client.SetPolicy(h.ctx(t), &ledgerv1.SetPolicyRequest{TenantId: "acme", PolicyJson: good}); err != nil {
		t.Fatalf("codes the shop has (one inactive): %v", err)
	}
	shop.SetDown(true)
	if _, err := h.client.SetPolicy(h.ctx(t), &ledgerv1.SetPolicyRequest{TenantId: "acme", PolicyJson: good}); status.Code(err) != codes.Unavailable ||
		!strings.Contains(err.Error(), "payment-methods") {
		t.Fatalf("shop down: %v", err)
	}

	// Without a shop there is nothing to check against.
	h.createTenant(t, "beta")
	if _, err := h.client.SetPolicy(h.ctx(t), &ledgerv1.SetPolicyRequest{TenantId: "beta",
		PolicyJson: `{"payment_method_map":{"anything":""}}`}); err != nil {
		t.Fatalf("tenant without a shop: %v", err)
	}
}
