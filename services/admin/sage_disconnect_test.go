package admin_test

import (
	"errors"
	"testing"

	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

func TestDisconnectSageRevokesAtSage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "acme")
	h.connectSage(t, "acme")
	before, err := h.st.Tokens(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.client.DisconnectSage(h.ctx(t), &ledgerv1.DisconnectSageRequest{TenantId: "acme"})
	if err != nil {
		t.Fatalf("DisconnectSage: %v", err)
	}
	if got := resp.GetTenant().GetSageStatus(); got == "active" {
		t.Fatalf("Sage status after disconnect: %s", got)
	}
	if _, err := h.st.Tokens(t.Context(), "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tokens must be deleted, got %v", err)
	}
	// Sage no longer honours the refresh token.
	oauth := sage.OAuth{Endpoints: h.svc.Config().Sage, ClientID: h.svc.Config().SageClientID,
		ClientSecret: h.svc.Config().SageClientSecret.Reveal()}
	if _, err := oauth.Refresh(t.Context(), before.Refresh); !errors.Is(err, sage.ErrInvalidGrant) {
		t.Fatalf("refresh after revoke: want invalid_grant, got %v", err)
	}
}
