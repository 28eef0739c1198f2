package mapper

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCanonicalDocuments feeds arbitrary bytes to the decoders of Magento's
// canonical documents and, when they decode, to the Builder: nothing may
// panic, a write that is built keeps Sage's total equal to grand_total (the
// Builder fails the run otherwise), and a refusal is a *Skip or a *Failure
// (never an error the handler would retry). canonical_fuzz_test.go has a
// target per document with the full properties.
func FuzzCanonicalDocuments(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "invoices", "*.json"))
	for _, name := range files {
		raw, _ := os.ReadFile(name)
		var fx fixture
		if json.Unmarshal(raw, &fx) == nil {
			f.Add([]byte(fx.Invoice))
		}
	}
	f.Add([]byte(`{"magento_id":1,"increment_id":"1","invoice_id":1,"lines":[],"grand_total":"1e400","adjustment_positive":-3}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ctx := context.Background()
		b := Builder{TenantID: "t", Policy: goldenPolicy(), BaseCurrency: "GBP", Dir: &MemoryDirectory{}}
		var inv Invoice
		refused := func(_ any, err error) {
			if err != nil {
				checkBuildError(t, err)
			}
		}
		if json.Unmarshal(raw, &inv) == nil {
			refused(b.Invoice(ctx, inv))
			refused(b.Payment(ctx, inv, Payment{Method: "checkmo", Amount: inv.GrandTotal, CapturedAt: inv.CreatedAt}))
			_ = FilterInvoice(b.Policy, inv)
		}
		var cm CreditMemo
		if json.Unmarshal(raw, &cm) == nil {
			refused(b.CreditMemo(ctx, cm, nil))
			if inv.MagentoID != 0 {
				refused(b.CreditMemo(ctx, cm, &inv))
			}
		}
		var p Product
		if json.Unmarshal(raw, &p) == nil {
			refused(b.Product(ctx, p))
		}
		var pay Payment
		_ = json.Unmarshal(raw, &pay)
	})
}
