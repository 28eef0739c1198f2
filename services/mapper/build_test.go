package mapper

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/policy"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// fixture is one testdata/invoices case: a policy document over the defaults
// and a canonical invoice as Magento serves it.
type fixture struct {
	Policy  json.RawMessage `json:"policy"`
	Invoice json.RawMessage `json:"invoice"`
}

func loadFixture(t *testing.T, name string) (policy.Policy, magento.Invoice) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "invoices", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse(f.Policy)
	if err != nil {
		t.Fatal(err)
	}
	var inv magento.Invoice
	if err := json.Unmarshal(f.Invoice, &inv); err != nil {
		t.Fatal(err)
	}
	return pol, inv
}

// goldenView renders a SageWrite readably: bodies as JSON, not base64.
func goldenView(t *testing.T, w *ledgerv1.SageWrite) []byte {
	t.Helper()
	type op struct {
		Key           string          `json:"key"`
		Resource      string          `json:"resource"`
		XrefKind      string          `json:"xref_kind"`
		XrefKey       string          `json:"xref_key"`
		Currency      string          `json:"currency"`
		Reference     string          `json:"reference"`
		IdempotencyID string          `json:"idempotency_id"`
		Bindings      []string        `json:"bindings,omitempty"`
		Body          json.RawMessage `json:"body"`
	}
	v := struct {
		EntityType      string   `json:"entity_type"`
		MagentoEntityID int64    `json:"magento_entity_id"`
		ResultKey       string   `json:"result_key"`
		AppliedQuirks   []string `json:"applied_quirks"`
		Operations      []op     `json:"operations"`
	}{w.EntityType, w.MagentoEntityId, w.ResultKey, w.AppliedQuirks, nil}
	for _, o := range w.Operations {
		var bs []string
		for _, b := range o.Bindings {
			bs = append(bs, b.Field+" from "+b.FromKey)
		}
		v.Operations = append(v.Operations, op{o.Key, o.Resource.String(), o.XrefKind, o.XrefKey, o.Currency,
			o.Reference, o.IdempotencyId, bs, o.Body})
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

func TestInvoiceGolden(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"registered_customer", "guest_mixed_case_email", "untaxed_shipping",
		"virtual_order", "html_entities", "eur_invoice",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pol, inv := loadFixture(t, name)
			w, err := Builder{TenantID: "t1", Policy: pol, BaseCurrency: "GBP"}.Invoice(inv)
			if err != nil {
				t.Fatal(err)
			}
			got := goldenView(t, w)
			path := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestInvoiceGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("SageWrite differs from %s (run with -update if intended):\n%s", path, got)
			}
			checkInvariants(t, inv, w)
		})
	}
}

// checkInvariants re-derives the money rules from the emitted body.
func checkInvariants(t *testing.T, inv magento.Invoice, w *ledgerv1.SageWrite) {
	t.Helper()
	var body SageInvoice
	if err := json.Unmarshal(w.Operations[1].Body, &body); err != nil {
		t.Fatal(err)
	}
	lines := money.Zero
	for _, l := range body.InvoiceLines {
		if !l.NetAmount.Add(l.TaxAmount).Equal(l.TotalAmount) {
			t.Errorf("line %q: net %s + tax %s != total %s", l.Description, l.NetAmount, l.TaxAmount, l.TotalAmount)
		}
		if !l.CurrencyTaxAmount.Equal(l.TaxAmount) {
			t.Errorf("line %q: currency_tax_amount %s != tax_amount %s", l.Description, l.CurrencyTaxAmount, l.TaxAmount)
		}
		lines = lines.Add(l.TotalAmount)
	}
	if !body.TotalAmount.Equal(inv.GrandTotal.Cents()) {
		t.Errorf("total %s != grand_total %s", body.TotalAmount, inv.GrandTotal.Cents())
	}
	if !money.Sum(lines, body.ShippingNetAmount, body.ShippingTaxAmount).Equal(body.TotalAmount) {
		t.Errorf("header total %s is not lines + shipping", body.TotalAmount)
	}
	if body.MainAddress == nil || body.DeliveryAddress == nil {
		t.Errorf("both addresses must be sent (§17)")
	}
	if strings.Contains(string(w.Operations[1].Body), "base_currency_") {
		t.Errorf("base_currency_* must not be sent (§27)")
	}
}

func TestTotalsMismatchFails(t *testing.T) {
	t.Parallel()
	pol, inv := loadFixture(t, "registered_customer")
	inv.GrandTotal = money.Number{Amount: money.MustParse("39.19")}
	_, err := Builder{TenantID: "t1", Policy: pol, BaseCurrency: "GBP"}.Invoice(inv)
	var f *Failure
	if !errors.As(err, &f) || f.Class != ClassValidation || f.Code != CodeTotalsMismatch {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(f.Message, "39.18") || !strings.Contains(f.Message, "39.19") {
		t.Errorf("message should give both figures: %s", f.Message)
	}
}

func TestMissingLedgerAccountFails(t *testing.T) {
	t.Parallel()
	_, inv := loadFixture(t, "registered_customer")
	_, err := Builder{TenantID: "t1", Policy: policy.Default(), BaseCurrency: "GBP"}.Invoice(inv)
	var f *Failure
	if !errors.As(err, &f) || f.Code != CodeRefCacheStale ||
		f.Message != "default_ledger_account_id is not set: connect Sage or set it in the tenant policy" {
		t.Fatalf("got %v", err)
	}
}

func TestIdempotencyIDsAreDeterministic(t *testing.T) {
	t.Parallel()
	pol, inv := loadFixture(t, "registered_customer")
	b := Builder{TenantID: "t1", Policy: pol, BaseCurrency: "GBP"}
	w1, _ := b.Invoice(inv)
	w2, _ := b.Invoice(inv)
	for i := range w1.Operations {
		id := w1.Operations[i].IdempotencyId
		if id != w2.Operations[i].IdempotencyId || len(id) != 32 {
			t.Fatalf("operation %d: %q vs %q", i, id, w2.Operations[i].IdempotencyId)
		}
	}
	other, _ := Builder{TenantID: "t2", Policy: pol, BaseCurrency: "GBP"}.Invoice(inv)
	if other.Operations[1].IdempotencyId == w1.Operations[1].IdempotencyId {
		t.Fatal("tenants must not share idempotency ids")
	}
}

func TestInvoiceReferenceNeverDoubled(t *testing.T) {
	t.Parallel()
	cases := [][3]string{{"INV-", "000001", "INV-000001"}, {"INV-", "INV-000001", "INV-000001"}, {"", "42", "42"}}
	for _, c := range cases {
		if got := invoiceReference(c[0], c[1]); got != c[2] {
			t.Errorf("invoiceReference(%q, %q) = %q", c[0], c[1], got)
		}
	}
}

func TestContactWrite(t *testing.T) {
	t.Parallel()
	c := magento.Contact{MagentoID: 42, Email: "a@b.c", FirstName: "Ann", LastName: "Smith",
		Addresses: []magento.Address{{Kind: "billing", Street: []string{"1 Road"}, City: "Leeds", CountryID: "GB"}}}
	w, err := Builder{TenantID: "t1", Policy: policy.Default(), BaseCurrency: "GBP"}.Contact(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Operations) != 1 || w.ResultKey != KeyContact || w.EntityType != "customer" {
		t.Fatalf("got %+v", w)
	}
	var body SageContact
	if err := json.Unmarshal(w.Operations[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Name != "Ann Smith" || body.Reference != "M42" || body.CurrencyID != "GBP" ||
		body.DeliveryAddress == nil || body.DeliveryAddress.City != "Leeds" || !body.MainContactPerson.IsMainContact {
		t.Fatalf("got %+v", body)
	}
}
