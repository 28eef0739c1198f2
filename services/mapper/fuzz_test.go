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
// panic, and a write that is built keeps Sage's total equal to grand_total
// (the Builder fails the run otherwise).
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
		if json.Unmarshal(raw, &inv) == nil {
			_, _ = b.Invoice(ctx, inv)
			_, _ = b.Payment(ctx, inv, Payment{Method: "checkmo", Amount: inv.GrandTotal, CapturedAt: inv.CreatedAt})
			_ = FilterInvoice(b.Policy, inv)
		}
		var cm CreditMemo
		if json.Unmarshal(raw, &cm) == nil {
			_, _ = b.CreditMemo(ctx, cm, nil)
			if inv.MagentoID != 0 {
				_, _ = b.CreditMemo(ctx, cm, &inv)
			}
		}
		var p Product
		if json.Unmarshal(raw, &p) == nil {
			_, _ = b.Product(ctx, p)
		}
		var pay Payment
		_ = json.Unmarshal(raw, &pay)
	})
}
