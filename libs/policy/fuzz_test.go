package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ledgersync/ledger/libs/money"
)

// FuzzParse feeds arbitrary documents to Parse, as the admin service and the
// mapper read a stored policy. A refused document gets an error that says
// what is wrong. An accepted one is valid, and its snapshot (JSON, stored on
// every run) is a document Parse accepts again and that snapshots to the same
// bytes: a replayed run is mapped with exactly the policy it was mapped with.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := Parse(doc)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatalf("empty error for %q", doc)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Parse accepted %q but Validate says %v", doc, err)
		}
		if len(bytes.TrimSpace(doc)) > 0 && !json.Valid(doc) {
			t.Fatalf("Parse accepted %q, which is not one JSON document", doc)
		}
		snap := p.JSON()
		if !json.Valid(snap) {
			t.Fatalf("the snapshot of %q is %q, not JSON", doc, snap)
		}
		again, err := Parse(snap)
		if err != nil {
			t.Fatalf("the snapshot %s of %q does not parse: %v", snap, doc, err)
		}
		if !bytes.Equal(again.JSON(), snap) {
			t.Fatalf("snapshot changes on a round trip:\n%s\n%s", snap, again.JSON())
		}
		// The snapshot holds the very amounts and date the run used.
		if !sameAmount(p.RoundingTolerance, again.RoundingTolerance) || !sameAmount(p.B2C.Threshold, again.B2C.Threshold) {
			t.Fatalf("%q: the snapshot %s changes an amount (tolerance %v→%v, threshold %v→%v)", doc, snap,
				p.RoundingTolerance, again.RoundingTolerance, p.B2C.Threshold, again.B2C.Threshold)
		}
		if (p.SyncSince == nil) != (again.SyncSince == nil) || p.SyncSince != nil && !p.SyncSince.Equal(*again.SyncSince) {
			t.Fatalf("%q: the snapshot %s changes sync_since", doc, snap)
		}
		// Every id the policy uses is named by its field, and an empty
		// reference cache refuses each with a *ReferenceError naming it.
		empty := References{LedgerAccounts: []string{}, TaxRates: []string{}, BankAccounts: []string{}, PaymentMethods: []string{}}
		for _, u := range p.Uses() {
			if u.Field == "" || u.Kind == "" {
				t.Fatalf("use %+v has no field or kind", u)
			}
			var re *ReferenceError
			if err := empty.Check(u.Field, u.Kind, u.ID); !errors.As(err, &re) || re.Field != u.Field || !strings.Contains(err.Error(), u.Field) {
				t.Fatalf("empty references accepted %+v: %v", u, err)
			}
		}
		if err := p.CheckReferences(References{}); err != nil && p.DefaultLedgerAccountID != "" && p.DefaultTaxRateID != "" {
			// With no kind fetched only required-but-empty ids can fail.
			for _, u := range p.Uses() {
				if u.ID == "" {
					return
				}
			}
			t.Fatalf("unfetched references refused a complete policy: %v", err)
		}
	})
}

func sameAmount(a, b *money.Amount) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// FuzzParseReferences feeds arbitrary reference-cache documents (Sage's
// $items arrays as stored). A kind that decodes has exactly its non-empty ids,
// each of which Check accepts; a kind that does not decode is named in the
// error.
func FuzzParseReferences(f *testing.F) {
	f.Fuzz(func(t *testing.T, ledger, tax, bank, methods []byte) {
		docs := map[string][]byte{RefLedgerAccounts: ledger, RefTaxRates: tax, RefBankAccounts: bank, RefPaymentMethods: methods}
		r, err := ParseReferences(docs)
		lists := map[string][]string{RefLedgerAccounts: r.LedgerAccounts, RefTaxRates: r.TaxRates,
			RefBankAccounts: r.BankAccounts, RefPaymentMethods: r.PaymentMethods}
		for kind, doc := range docs {
			var items []struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(doc, &items) != nil {
				if err == nil || !strings.Contains(err.Error(), kind) {
					t.Fatalf("%s %q does not decode but the error %v does not name it", kind, doc, err)
				}
				continue
			}
			var want []string
			for _, it := range items {
				if it.ID != "" {
					want = append(want, it.ID)
				}
			}
			got := lists[kind]
			if got == nil || len(got) != len(want) {
				t.Fatalf("%s %q: ids %q, want %q", kind, doc, got, want)
			}
			for i, id := range got {
				if id != want[i] {
					t.Fatalf("%s %q: ids %q, want %q", kind, doc, got, want)
				}
				if err := r.Check("field", kind, id); err != nil {
					t.Fatalf("%s: the cached id %q is refused: %v", kind, id, err)
				}
			}
		}
	})
}
