package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
)

// TestConsoleInBrowser drives the operator console in headless Chromium
// (browser_test.go): log in, see the tenants.
func TestConsoleInBrowser(t *testing.T) {
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
	b := startBrowser(t, ctx, st)
	b.Login()

	b.Page("tenants", "/dashboard", func(int) {
		b.WaitVisible(`tr[data-tenant="` + tenant + `"]`)
		if got := b.Text(`tr[data-tenant="` + tenant + `"]`); !strings.Contains(got, "Browser shop") || !strings.Contains(got, "active") {
			t.Fatalf("tenants page row: %q", got)
		}
	})
}
