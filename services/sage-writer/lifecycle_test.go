package sagewriter_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/store"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// The keep-alive refreshes a binding whose refresh token is about to expire,
// leaves fresh ones alone, and flips a binding Sage refuses to token_revoked.
func TestKeepAliveRefreshesIdleBindings(t *testing.T) {
	t.Parallel()
	f := newFleet(t, sagesim.Config{Seed: 21})
	ids := f.addTenants("idle", 2)
	ctx := t.Context()
	svc := f.start(f.config(), f.st, true)
	old, _ := f.st.Tokens(ctx, ids[0])
	old.RefreshExpiresAt = time.Now().Add(24 * time.Hour) // idle for 30 days
	if err := f.st.SaveTokens(ctx, ids[0], old); err != nil {
		t.Fatal(err)
	}
	fresh, _ := f.st.Tokens(ctx, ids[1])
	res, err := svc.KeepAlivePass(ctx)
	if err != nil || res.Refreshed != 1 || res.Revoked != 0 {
		t.Fatalf("pass %+v %v", res, err)
	}
	now, _ := f.st.Tokens(ctx, ids[0])
	if now.Refresh == old.Refresh || time.Until(now.RefreshExpiresAt) < 30*24*time.Hour {
		t.Fatalf("not refreshed: expires %s", now.RefreshExpiresAt)
	}
	if again, _ := f.st.Tokens(ctx, ids[1]); again.Version != fresh.Version {
		t.Fatal("a fresh binding was refreshed")
	}
	// Sage forgot the grant: the keep-alive finds out and flips the binding.
	f.sim.RevokeRefreshTokens()
	now.RefreshExpiresAt = time.Now().Add(time.Hour)
	if err := f.st.SaveTokens(ctx, ids[0], now); err != nil {
		t.Fatal(err)
	}
	res, err = svc.KeepAlivePass(ctx)
	if err != nil || res.Revoked != 1 {
		t.Fatalf("pass %+v %v", res, err)
	}
	if tn, _ := f.st.Tenant(ctx, ids[0]); tn.Binding.Status != store.StatusTokenRevoked {
		t.Fatalf("status %s", tn.Binding.Status)
	}
}

// Revoke (the admin's disconnect) revokes the refresh token at Sage, forgets
// the tokens and holds the tenant's writes.
func TestRevokeDisconnects(t *testing.T) {
	t.Parallel()
	f := newFleet(t, sagesim.Config{Seed: 22})
	tenant := f.addTenants("bye", 1)[0]
	ctx := t.Context()
	svc := f.start(f.config(), f.st, true)
	tok, _ := f.st.Tokens(ctx, tenant)
	if err := svc.Revoke(ctx, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Tokens(ctx, tenant); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tokens kept: %v", err)
	}
	if tn, _ := f.st.Tenant(ctx, tenant); tn.Binding.Status != store.StatusRevoked {
		t.Fatalf("status %s", tn.Binding.Status)
	}
	if _, err := f.oauth.Refresh(ctx, tok.Refresh); !errors.Is(err, sage.ErrInvalidGrant) {
		t.Fatalf("the refresh token still works at Sage: %v", err)
	}
	run := f.newRuns(tenant, "invoice.created", 1)
	f.publish(f.invoiceWrite(tenant, run[0], 1, 1))
	devtest.Eventually(t, "the write is held", func() bool {
		r, err := f.st.Run(ctx, run[0])
		return err == nil && r.Attempts >= 2 && !r.Terminal()
	})
	if f.deadLetters() != 0 || len(f.sim.Invoices(f.businessOf(tenant))) != 0 {
		t.Fatal("a disconnected tenant's write went somewhere")
	}
	// Reconnecting resumes it.
	f.authorise(tenant)
	if c := f.waitTerminal(run); c[store.RunSucceeded] != 1 {
		t.Fatalf("%v", c)
	}
}
