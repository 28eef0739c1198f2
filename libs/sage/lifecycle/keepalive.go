package lifecycle

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/store"
)

// Keep-alive defaults: Sage refresh tokens die after 31 days unused, and Sage
// advises refreshing at least monthly even when idle; a binding is refreshed
// when its refresh token expires within 7 days or was not rotated for 25 days,
// checked every hour.
const (
	DefaultKeepAliveEvery   = time.Hour
	DefaultKeepAliveExpiry  = 7 * 24 * time.Hour
	DefaultKeepAliveRotated = 25 * 24 * time.Hour
)

// KeepAliveStore is what KeepAlive needs; *store.Store implements it.
type KeepAliveStore interface {
	Store
	StatusSetter
	StaleTokens(ctx context.Context, expiresBefore, rotatedBefore time.Time) ([]store.StaleToken, error)
}

// KeepAlive refreshes idle bindings before their refresh token expires.
type KeepAlive struct {
	Store KeepAliveStore
	OAuth Refresher
	Log   *slog.Logger
	// Every is the pause between passes (default DefaultKeepAliveEvery).
	Every time.Duration
	// ExpiresWithin refreshes a binding whose refresh token expires within it
	// (default DefaultKeepAliveExpiry).
	ExpiresWithin time.Duration
	// RotatedBefore refreshes a binding whose tokens were not rotated for this
	// long (default DefaultKeepAliveRotated).
	RotatedBefore time.Duration
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// PassResult counts one pass.
type PassResult struct {
	Refreshed, Revoked, Failed int
}

// Run makes a pass at once and then every Every, until ctx is done.
func (k *KeepAlive) Run(ctx context.Context) {
	every := k.Every
	if every <= 0 {
		every = DefaultKeepAliveEvery
	}
	for {
		if _, err := k.Pass(ctx); err != nil && ctx.Err() == nil {
			k.log().Warn("sage token keep-alive pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

func (k *KeepAlive) log() *slog.Logger {
	if k.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return k.Log
}

// Pass refreshes every stale binding once. The refresh re-checks staleness
// inside the per-binding lock, so replicas running passes at the same time
// refresh each binding once.
func (k *KeepAlive) Pass(ctx context.Context) (PassResult, error) {
	now := time.Now
	if k.Now != nil {
		now = k.Now
	}
	within, rotated := k.ExpiresWithin, k.RotatedBefore
	if within <= 0 {
		within = DefaultKeepAliveExpiry
	}
	if rotated <= 0 {
		rotated = DefaultKeepAliveRotated
	}
	t0 := now()
	tenants, err := k.Store.StaleTokens(ctx, t0.Add(within), t0.Add(-rotated))
	if err != nil {
		return PassResult{}, err
	}
	var res PassResult
	for _, st := range tenants {
		tenant := st.TenantID
		// Under the lock: still the tokens found stale (nobody rotated them
		// meanwhile, e.g. another replica's pass or a write's refresh).
		stale := func(cur store.Tokens) bool { return cur.Version == st.Version }
		_, err := refresh(ctx, k.Store, k.OAuth, tenant, stale)
		switch {
		case err == nil:
			res.Refreshed++
			k.log().Info("sage token keep-alive: binding refreshed", "tenant", tenant)
		case errors.Is(err, sage.ErrInvalidGrant):
			res.Revoked++
			if merr := MarkRevoked(ctx, k.Store, tenant); merr != nil {
				k.log().Error("could not mark the Sage binding token_revoked", "tenant", tenant, "err", merr)
			}
			k.log().Warn("sage token keep-alive: Sage refused the refresh token; binding marked token_revoked",
				"tenant", tenant, "err", err)
		default:
			res.Failed++
			k.log().Warn("sage token keep-alive: refresh failed; next pass retries", "tenant", tenant, "err", err)
		}
	}
	return res, nil
}
