package main

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/store"
)

// expectedStatus is the console error Chromium logs for a page answered
// with a 4xx on purpose (a refused form).
var expectedStatus = regexp.MustCompile(`status of 4\d\d`)

// TestConsoleInBrowser drives the operator console in headless Chromium
// (browser_test.go) against the whole stack: log in; the tenants page shows
// the tenant; fix a payment-method mapping in the policy form (a code the
// shop does not have first: the error is shown next to that row; then the
// right one); re-pair a drifted shop (binding token_revoked → "Re-pair",
// a refused code shown next to its field, then a fresh code from the Magento
// simulator); disconnect Sage behind its confirmation and connect it again
// through Sage's authorization page; a forged CSRF token gets 403 and changes
// nothing; log out.
// Every page is screenshotted at 1280 and 390 px and must log no console
// error.
func TestConsoleInBrowser(t *testing.T) {
	// Its own stack: it runs beside the other heavy end-to-end tests.
	t.Parallel()
	if testing.Short() {
		t.Skip("the browser run is skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	st, _ := startStack(t, ctx, stack.Options{})
	defer st.Close()
	const tenant = "browser-shop"
	if err := st.Onboard(ctx, tenant, "Browser shop"); err != nil {
		t.Fatalf("onboarding: %v", err)
	}
	row := `tr[data-tenant="` + tenant + `"]`
	b := startBrowser(t, ctx, st)
	b.Login()

	b.Page("tenants", "/dashboard", func(int) {
		if got := b.Text(row); !strings.Contains(got, "Browser shop") || !strings.Contains(got, "active") {
			t.Fatalf("tenants page row: %q", got)
		}
	})
	b.Page("tenant", "/tenants/"+tenant, func(int) {
		if got := b.Text("#magento-status"); got != "active" {
			t.Fatalf("tenant page: Magento %q", got)
		}
	})

	t.Run("policy form", func(t *testing.T) {
		b.t = t
		policyPath := "/tenants/" + tenant + "/policy"
		b.Page("policy", policyPath, func(int) { b.WaitVisible("#policy-form") })
		bank := browse(b, chromedp.Evaluate[string](`document.querySelector("#payment_method_map-value-0 option:nth-child(2)").value`))
		if bank == "" {
			t.Fatal("the bank account select offers no Sage bank account")
		}
		// A method code the shop does not have: refused, named next to its row.
		code := b.Submit(map[string]string{"#payment_method_map-key-0": "chekmo", "#payment_method_map-value-0": bank}, "#save-policy")
		b.ExpectConsoleErrors("refused policy", expectedStatus)
		rowSel := `tr[data-field='payment_method_map["chekmo"]'] .field-error`
		if got := b.Text(rowSel); code != http.StatusBadRequest || !strings.Contains(got, `payment_method_map["chekmo"]`) || !strings.Contains(got, "checkmo") {
			t.Fatalf("refused policy: %d, row error %q", code, got)
		}
		b.Screenshot("policy-error-1280")
		b.SetWidth(390)
		b.Screenshot("policy-error-390")
		b.SetWidth(1280)
		if doc, _ := st.Store.Policy(ctx, tenant); strings.Contains(string(doc), "chekmo") {
			t.Fatalf("a refused policy was stored: %s", doc)
		}
		// The right code: saved.
		if code := b.Submit(map[string]string{`tr[data-field='payment_method_map["chekmo"]'] input`: "checkmo"}, "#save-policy"); code != http.StatusOK {
			t.Fatalf("saving the policy: %d", code)
		}
		b.WaitText(".flash-ok", "Policy saved")
		b.NoConsoleErrors("saved policy")
		doc, err := st.Store.Policy(ctx, tenant)
		var stored struct {
			PaymentMethodMap map[string]string `json:"payment_method_map"`
		}
		if err != nil || json.Unmarshal(doc, &stored) != nil || stored.PaymentMethodMap["checkmo"] != bank {
			t.Fatalf("stored policy: %s %v", doc, err)
		}
	})

	t.Run("re-pair a drifted shop", func(t *testing.T) {
		b.t = t
		// The shop's keys drifted: the binding is token_revoked, as a refused
		// fetch or repeated 401 webhooks leave it.
		if err := st.Store.SetMagentoStatus(ctx, tenant, store.StatusTokenRevoked); err != nil {
			t.Fatal(err)
		}
		b.Page("tenants-drifted", "/dashboard", func(int) {
			if got := b.Text(row + " a.button"); got != "Re-pair the shop" {
				t.Fatalf("drifted shop's action: %q", got)
			}
		})
		b.Do(chromedp.Click(chromedp.CSS(row + ` a[href$="/connect/magento"]`)))
		b.WaitVisible("#pairing_code")
		b.Page("connect-magento", b.Location(), nil)
		// A code the shop refuses: ConnectMagento's message next to the field.
		code := b.Submit(map[string]string{"#pairing_code": strings.Repeat("0", 32)}, "#pair")
		b.ExpectConsoleErrors("refused pairing code", expectedStatus)
		if got := b.Text("#pairing_code-error"); code != http.StatusConflict || !strings.Contains(got, "the shop refused the pairing code") {
			t.Fatalf("refused code: %d %q", code, got)
		}
		b.Screenshot("connect-magento-refused")
		// A fresh code from the shop's admin (the simulator's Generate button).
		if code := b.Submit(map[string]string{"#pairing_code": st.Shop.GeneratePairingCode()}, "#pair"); code != http.StatusOK {
			t.Fatalf("pairing: %d", code)
		}
		b.WaitText(".flash-ok", "The shop is paired")
		if got := b.Text("#magento-status"); got != "active" {
			t.Fatalf("after re-pairing the page says Magento is %q", got)
		}
		b.NoConsoleErrors("re-paired")
		if tn, err := st.Store.Tenant(ctx, tenant); err != nil || tn.Binding.MagentoConnectionStatus != store.StatusActive {
			t.Fatalf("after re-pairing the binding is %+v (%v)", tn.Binding, err)
		}
		b.Screenshot("tenant-repaired")
	})

	t.Run("disconnect and reconnect Sage", func(t *testing.T) {
		b.t = t
		b.Visit("/tenants/" + tenant)
		b.Do(chromedp.Click(chromedp.CSS(`#sage-action`)))
		b.WaitVisible("#confirm-disconnect")
		if got := b.Text("main"); !strings.Contains(got, tenant) || !strings.Contains(got, "revokes its refresh token") {
			t.Fatalf("the Sage disconnect confirmation: %q", got)
		}
		if code := b.Submit(nil, "#confirm-disconnect"); code != http.StatusOK {
			t.Fatalf("disconnecting Sage: %d", code)
		}
		b.WaitText(".flash-ok", "Sage is disconnected")
		if got := b.Text("#sage-action"); got != "Connect Sage" {
			t.Fatalf("after the disconnect the Sage action is %q", got)
		}
		b.Do(chromedp.Click(chromedp.CSS(`#sage-action`)))
		b.WaitVisible("#connect-sage")
		b.Page("connect-sage", b.Location(), nil)
		// Go to Sage: StartSageConnect, Sage's authorization page (the
		// simulator approves at once) and back to the admin's callback.
		if code := b.Submit(nil, "#connect-sage"); code != http.StatusOK {
			t.Fatalf("the Sage round trip ended with %d at %s", code, b.Location())
		}
		if got := b.Text("h1"); got != "Sage is connected" {
			t.Fatalf("after Sage's authorization: %q at %s", got, b.Location())
		}
		b.NoConsoleErrors("Sage connected")
		b.Screenshot("sage-connected")
		if tn, err := st.Store.Tenant(ctx, tenant); err != nil || tn.Binding.Status != store.StatusActive {
			t.Fatalf("after reconnecting Sage the binding is %+v (%v)", tn.Binding, err)
		}
	})

	t.Run("forged CSRF token", func(t *testing.T) {
		b.t = t
		b.Page("disconnect-confirm", "/tenants/"+tenant+"/disconnect/magento", func(int) {
			if got := b.Text("h1"); !strings.Contains(got, tenant) {
				t.Fatalf("the confirmation does not name the tenant: %q", got)
			}
		})
		b.Do(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("input[name=csrf]").forEach(e => e.value = "forged-" + e.value)`))
		code := b.Submit(nil, "#confirm-disconnect")
		b.ExpectConsoleErrors("forged token", expectedStatus)
		if code != http.StatusForbidden || !strings.Contains(b.Text("h1"), "nothing was changed") {
			t.Fatalf("forged token: %d %q", code, b.Text("h1"))
		}
		b.Screenshot("forbidden")
		if tn, err := st.Store.Tenant(ctx, tenant); err != nil || tn.Binding.MagentoConnectionStatus != store.StatusActive {
			t.Fatalf("a forged form changed the binding: %+v %v", tn.Binding, err)
		}
	})

	t.Run("log out", func(t *testing.T) {
		b.t = t
		b.Visit("/dashboard")
		if code := b.Submit(nil, `form[action="/logout"] button`); code != http.StatusOK {
			t.Fatalf("logout: %d", code)
		}
		b.WaitText(".flash-ok", "logged out")
		b.Visit("/dashboard")
		if loc := b.Location(); !strings.HasPrefix(loc, "/login") {
			t.Fatalf("after logout /dashboard shows %s", loc)
		}
		b.NoConsoleErrors("logged out")
	})
}
