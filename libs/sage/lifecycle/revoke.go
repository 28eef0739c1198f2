package lifecycle

import (
	"context"
	"fmt"

	"github.com/ledgersync/ledger/libs/store"
)

// RevokeStore is what Revoke needs; *store.Store implements it.
type RevokeStore interface {
	RevokeTokens(ctx context.Context, tenantID string, revoke func(context.Context, store.Tokens) error) error
}

// Revoker revokes a refresh token at Sage; sage.OAuth implements it.
type Revoker interface {
	Revoke(ctx context.Context, refresh string) error
}

// Revoke disconnects tenantID's Sage binding: inside the per-binding token lock
// (so no replica can rotate the refresh token meanwhile) it revokes the refresh
// token at Sage (POST /revoke), deletes the stored tokens and marks the binding
// revoked; the writer then holds the tenant's writes until it is re-authorised.
// Sage cannot revoke access tokens: the last one stays valid for at most five
// minutes. When Sage cannot be reached nothing changes and the error is
// returned, so the caller can try again; a binding without tokens is only
// marked revoked. entity_xref is kept, so reconnecting never duplicates.
func Revoke(ctx context.Context, st RevokeStore, oauth Revoker, tenantID string) error {
	err := st.RevokeTokens(ctx, tenantID, func(ctx context.Context, cur store.Tokens) error {
		if err := oauth.Revoke(ctx, cur.Refresh); err != nil {
			return fmt.Errorf("revoking the Sage refresh token of %s: %w", tenantID, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sage disconnect of %s: %w", tenantID, err)
	}
	return nil
}
