package mapper

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/policy"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
)

// countingStore counts the reads tenantData saves.
type countingStore struct {
	*store.Store
	policyReads, refReads int
}

func (c *countingStore) Policy(ctx context.Context, tenantID string) ([]byte, error) {
	c.policyReads++
	return c.Store.Policy(ctx, tenantID)
}

func (c *countingStore) RefCache(ctx context.Context, tenantID, kind string) ([]byte, time.Time, error) {
	c.refReads++
	return c.Store.RefCache(ctx, tenantID, kind)
}

// A tenant's policy and reference data are read and parsed once per change:
// every event reads their versions with the tenant, and an edit however made
// (SetPolicy, a refresh, a direct UPDATE) applies to the next event.
func TestTenantDataReloadsOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sealer, _ := secrets.NewRandomKeyRing()
	st, err := store.Open(ctx, devtest.Database(t), sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.CreateTenant(ctx, "t1", "Shop"); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st}
	j := &job{s: &Service{st: cs}}
	load := func() (policy.Policy, *policy.References) {
		t.Helper()
		_, v, err := st.TenantWithVersions(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		pol, doc, err := j.policy(ctx, "t1", v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(doc, pol.JSON()) {
			t.Fatalf("the policy's JSON %s is not the policy's %s", doc, pol.JSON())
		}
		refs, err := j.references(ctx, "t1", v)
		if err != nil {
			t.Fatal(err)
		}
		return pol, refs
	}
	reads := func(policyReads, refReads int) {
		t.Helper()
		if cs.policyReads != policyReads || cs.refReads != refReads {
			t.Fatalf("%d policy and %d ref_cache reads, want %d and %d", cs.policyReads, cs.refReads, policyReads, refReads)
		}
	}
	kinds := len(policy.RefKinds)

	// No policy row, no reference data yet.
	if pol, _ := load(); pol.DefaultLedgerAccountID != "" {
		t.Fatalf("policy %+v", pol)
	}
	reads(1, kinds)
	load()
	reads(1, kinds)

	if err := st.SetPolicy(ctx, "t1", []byte(`{"default_ledger_account_id":"acc-1"}`)); err != nil {
		t.Fatal(err)
	}
	if pol, _ := load(); pol.DefaultLedgerAccountID != "acc-1" {
		t.Fatalf("after SetPolicy: %+v", pol)
	}
	reads(2, kinds)
	for range 3 {
		load()
	}
	reads(2, kinds)

	// A change made behind the store's back is seen too.
	if _, err := st.Pool().Exec(ctx, `UPDATE policies SET doc = '{"default_ledger_account_id":"acc-2"}' WHERE tenant_id = 't1'`); err != nil {
		t.Fatal(err)
	}
	if pol, _ := load(); pol.DefaultLedgerAccountID != "acc-2" {
		t.Fatalf("after an UPDATE: %+v", pol)
	}
	reads(3, kinds)

	// A reference-data refresh reloads the references only.
	if err := st.SetRefCache(ctx, "t1", policy.RefTaxRates, []byte(`[{"id":"GB_STANDARD"}]`)); err != nil {
		t.Fatal(err)
	}
	if _, refs := load(); !slices.Contains(refs.TaxRates, "GB_STANDARD") {
		t.Fatalf("after a refresh: %+v", refs)
	}
	reads(3, 2*kinds)
	load()
	reads(3, 2*kinds)
}
