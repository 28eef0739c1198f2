package sagewriter

import (
	"context"

	"github.com/ledgersync/ledger/libs/sage/lifecycle"
)

// TokenSource is one binding's sage.TokenSource backed by the store: it
// refreshes the access token when it expires within a minute, inside the
// store's cross-process per-binding lock, committing the rotated refresh token
// before the new access token is used. It lives in libs/sage/lifecycle so the
// admin service shares it.
type TokenSource = lifecycle.TokenSource

// TokenStore is the part of the store a TokenSource needs.
type TokenStore = lifecycle.Store

// Refresher trades a refresh token for a new pair; sage.OAuth implements it.
type Refresher = lifecycle.Refresher

// NewTokenSource returns the TokenSource of tenantID's binding.
func NewTokenSource(st TokenStore, oauth Refresher, tenantID string) *TokenSource {
	return lifecycle.NewTokenSource(st, oauth, tenantID)
}

// Revoke disconnects tenantID's Sage binding: it revokes the refresh token at
// Sage, deletes the stored tokens and marks the binding revoked, all inside the
// per-binding token lock (see lifecycle.Revoke, which the admin service calls
// directly since services do not import each other). The tenant's writes are
// then held until it is re-authorised.
func (s *Service) Revoke(ctx context.Context, tenantID string) error {
	return lifecycle.Revoke(ctx, s.st, s.oauth, tenantID)
}
