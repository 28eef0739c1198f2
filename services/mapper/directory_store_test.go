package mapper

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgersync/ledger/libs/store"
)

// xrefMap is an in-memory XrefStore that counts the reads it answers.
type xrefMap struct {
	links         map[store.XrefKey]store.Xref
	single, batch int
}

func (m *xrefMap) Xref(_ context.Context, tenantID, kind, key, currency string) (store.Xref, error) {
	m.single++
	if x, ok := m.links[store.XrefKey{Kind: kind, MagentoKey: key, Currency: currency}]; ok {
		return x, nil
	}
	return store.Xref{}, store.ErrNotFound
}

func (m *xrefMap) Xrefs(_ context.Context, tenantID string, keys []store.XrefKey) (map[store.XrefKey]store.Xref, error) {
	m.batch++
	out := map[store.XrefKey]store.Xref{}
	for _, k := range keys {
		if x, ok := m.links[k]; ok {
			out[k] = x
		}
	}
	return out, nil
}

// record writes what a run decided, as its mapping record does.
func (m *xrefMap) record(d *StoreDirectory) {
	for _, x := range d.Pending() {
		m.links[store.XrefKey{Kind: x.Kind, MagentoKey: x.MagentoKey, Currency: x.Currency}] = x
	}
}

// A run's contact decision reads its links once, and decides as a read per
// question would: every invoice fixture, mapped twice (the second finds the
// first's records), gives the same write through the store's directory as
// through the in-memory one.
func TestStoreDirectoryReadsOnceAndDecidesTheSame(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "invoices", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			pol, inv := loadFixture(t, name)
			pol.B2C.Enabled = true // every question the decision can ask
			mem := &MemoryDirectory{}
			db := &xrefMap{links: map[store.XrefKey]store.Xref{}}
			for round := range 2 {
				want, werr := Builder{TenantID: "t1", Policy: pol, BaseCurrency: "GBP", Dir: mem}.Invoice(t.Context(), inv)
				db.single, db.batch = 0, 0
				dir := NewStoreDirectory("t1", db)
				got, gerr := Builder{TenantID: "t1", Policy: pol, BaseCurrency: "GBP", Dir: dir}.Invoice(t.Context(), inv)
				db.record(dir)
				if (werr == nil) != (gerr == nil) {
					t.Fatalf("round %d: errors differ: %v / %v", round, werr, gerr)
				}
				if werr != nil {
					return
				}
				if g, w := goldenView(t, got), goldenView(t, want); string(g) != string(w) {
					t.Errorf("round %d: the store directory's write differs:\n%s\nwant\n%s", round, g, w)
				}
				if db.batch != 1 || db.single != 0 {
					t.Errorf("round %d: %d batched and %d single reads, want 1 and 0", round, db.batch, db.single)
				}
			}
		})
	}
}
