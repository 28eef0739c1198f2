package store_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
)

// twoStores opens two stores on one database with one key ring: cached, with
// CacheTenants (its listener connected), and other, as another process.
func twoStores(t *testing.T) (cached, other *store.Store) {
	t.Helper()
	ctx := context.Background()
	db := devtest.Database(t)
	sealer, _ := secrets.NewRandomKeyRing()
	for _, p := range []**store.Store{&cached, &other} {
		st, err := store.Open(ctx, db, sealer)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		*p = st
	}
	if _, err := other.CreateTenant(ctx, "t1", "Tenant one"); err != nil {
		t.Fatal(err)
	}
	if err := other.SetMagentoPaired(ctx, "t1", "https://shop.example", "byte8_lk_one"); err != nil {
		t.Fatal(err)
	}
	cached.CacheTenants()
	devtest.Eventually(t, "the tenant cache's listener connected", func() bool { return cached.TenantCacheLive() })
	return cached, other
}

func TestTenantCacheServesFromMemoryUntilAChangeCommits(t *testing.T) {
	ctx := context.Background()
	cached, other := twoStores(t)
	reads := 0
	read := func() (store.Tenant, error) { reads++; return other.Tenant(ctx, "t1") }

	for range 3 {
		if tn, err := store.CachedTenant(cached, "t1", read); err != nil || tn.Binding.APIKey != "byte8_lk_one" {
			t.Fatalf("tenant: %+v %v", tn, err)
		}
	}
	if reads != 1 {
		t.Fatalf("three lookups read Postgres %d times, want 1", reads)
	}

	// A change made elsewhere, as an operator would (plain SQL), reaches
	// the cache with its notification.
	if _, err := other.Pool().Exec(ctx, `UPDATE bindings SET magento_base_url = 'https://moved.example' WHERE tenant_id = 't1'`); err != nil {
		t.Fatal(err)
	}
	devtest.Eventually(t, "the change reached the cache", func() bool {
		tn, err := cached.Tenant(ctx, "t1")
		return err == nil && tn.Binding.MagentoBaseURL == "https://moved.example"
	})

	// Its own writes are seen at once.
	if err := cached.SetMagentoStatus(ctx, "t1", store.StatusRevoked); err != nil {
		t.Fatal(err)
	}
	if tn, err := cached.Tenant(ctx, "t1"); err != nil || tn.Binding.APIKey != "" || tn.Binding.MagentoConnectionStatus != store.StatusRevoked {
		t.Fatalf("after its own revoke: %+v %v", tn.Binding, err)
	}
}

func TestTenantCacheKeepsNothingReadBeforeAChange(t *testing.T) {
	cached, other := twoStores(t)
	ctx := context.Background()
	reads := 0
	// The notification arrives while the read is on its way: what it read
	// may predate the change, so it must not be kept.
	racing := func() (store.Tenant, error) {
		reads++
		tn, err := other.Tenant(ctx, "t1")
		store.ForgetTenant(cached, "t1")
		return tn, err
	}
	if _, err := store.CachedTenant(cached, "t1", racing); err != nil {
		t.Fatal(err)
	}
	plain := func() (store.Tenant, error) { reads++; return other.Tenant(ctx, "t1") }
	if _, err := store.CachedTenant(cached, "t1", plain); err != nil {
		t.Fatal(err)
	}
	if reads != 2 {
		t.Fatalf("a copy read across an invalidation was kept (%d reads, want 2)", reads)
	}
}

func TestTenantCacheForgetsEverythingWhenItsListenerIsCut(t *testing.T) {
	ctx := context.Background()
	cached, other := twoStores(t)
	if _, err := cached.Tenant(ctx, "t1"); err != nil { // now cached
		t.Fatal(err)
	}
	// Cut the listening connection, then change the row at once: its
	// notification may go nowhere.
	var cut int
	if err := other.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE query = 'LISTEN `+store.TenantChangedChannel+`' AND datname = current_database()`).Scan(&cut); err != nil || cut != 1 {
		t.Fatalf("terminating the listener: %d %v", cut, err)
	}
	if err := other.SetSageStatus(ctx, "t1", store.StatusActive, "biz-after-cut"); err != nil {
		t.Fatal(err)
	}
	devtest.Eventually(t, "the change made while the listener was down is read", func() bool {
		tn, err := cached.Tenant(ctx, "t1")
		return err == nil && tn.Binding.SageBusinessID == "biz-after-cut"
	}, devtest.Within(30*time.Second))
	devtest.Eventually(t, "the listener is back", func() bool { return cached.TenantCacheLive() })
}

func TestTokensAreCachedAndFollowRefreshes(t *testing.T) {
	ctx := context.Background()
	cached, other := twoStores(t)
	exp := time.Now().Add(5 * time.Minute).UTC().Truncate(time.Second)
	if err := other.SaveTokens(ctx, "t1", store.Tokens{Access: "a1", Refresh: "r1", AccessExpiresAt: exp, RefreshExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	devtest.Eventually(t, "the saved tokens are read", func() bool {
		tok, err := cached.Tokens(ctx, "t1")
		return err == nil && tok.Access == "a1"
	})
	// Another replica rotates them.
	if _, err := other.RefreshTokens(ctx, "t1", func(store.Tokens) bool { return true },
		func(context.Context, store.Tokens) (store.Tokens, error) {
			return store.Tokens{Access: "a2", Refresh: "r2", AccessExpiresAt: exp, RefreshExpiresAt: exp}, nil
		}); err != nil {
		t.Fatal(err)
	}
	devtest.Eventually(t, "the rotated tokens reach the cache", func() bool {
		tok, err := cached.Tokens(ctx, "t1")
		return err == nil && tok.Access == "a2" && tok.Refresh == "r2"
	})
	if err := cached.DeleteTokens(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cached.Tokens(ctx, "t1"); err == nil {
		t.Fatal("deleted tokens still served")
	}
}

func TestTenantVersionsFollowPolicyAndReferenceChanges(t *testing.T) {
	ctx := context.Background()
	cached, other := twoStores(t)
	_, v0, err := cached.TenantWithVersions(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.SetPolicy(ctx, "t1", []byte(`{"tax":{}}`)); err != nil {
		t.Fatal(err)
	}
	var v1 store.DataVersions
	devtest.Eventually(t, "the policy's new version is served", func() bool {
		_, v1, err = cached.TenantWithVersions(ctx, "t1")
		return err == nil && v1.Policy != v0.Policy
	})
	if err := other.SetRefCache(ctx, "t1", "tax_rates", []byte(`[]`)); err != nil {
		t.Fatal(err)
	}
	devtest.Eventually(t, "the reference data's new version is served", func() bool {
		_, v2, err := cached.TenantWithVersions(ctx, "t1")
		return err == nil && v2.Refs != v1.Refs && v2.Policy == v1.Policy
	})
}

// Behind a pooler that drops a LISTEN's session (PgBouncer in transaction
// mode) no notification arrives: the listener's probe never comes back, so
// nothing is served from memory and every read sees the latest row.
func TestTenantCacheStaysOffWhenNotificationsDoNotArrive(t *testing.T) {
	ctx := context.Background()
	db := devtest.Database(t)
	sealer, _ := secrets.NewRandomKeyRing()
	st, err := store.Open(ctx, db, sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.CreateTenant(ctx, "t1", "Tenant one"); err != nil {
		t.Fatal(err)
	}
	var probes atomic.Int32
	store.SetProbe(st, func(context.Context, string) error { probes.Add(1); return nil }, 200*time.Millisecond)
	st.CacheTenants()
	devtest.Eventually(t, "the listener gave up on two probes and tried a third", func() bool { return probes.Load() >= 3 })
	if st.TenantCacheLive() {
		t.Fatal("the cache went live although no probe came back")
	}
	for i, url := range []string{"https://one.example", "https://two.example"} {
		if _, err := st.Tenant(ctx, "t1"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Pool().Exec(ctx, `UPDATE bindings SET magento_base_url = $1 WHERE tenant_id = 't1'`, url); err != nil {
			t.Fatal(err)
		}
		if tn, err := st.Tenant(ctx, "t1"); err != nil || tn.Binding.MagentoBaseURL != url {
			t.Fatalf("read %d after a change: %q %v, want %q", i, tn.Binding.MagentoBaseURL, err, url)
		}
	}
}
