package admin

import (
	"encoding/json"
	"testing"

	"github.com/ledgersync/ledger/libs/money"
)

func TestFillPolicyKeepsOperatorChoices(t *testing.T) {
	t.Parallel()
	rd := refData{
		ledgerAccounts: []ledgerAccount{{ID: "la-4010", NominalCode: 4010}, {ID: "la-4000", NominalCode: 4000}},
		taxRates: []taxRate{
			{ID: "US_HIGH", Name: "High", Percentage: money.MustParse("8.5")},
			{ID: "US_EXEMPT", Name: "Exempt", Percentage: money.MustParse("0")},
		},
	}
	d := derivePolicyDefaults(rd)
	if d.DefaultLedgerAccountID != "la-4000" || d.ZeroTaxRateID != "US_EXEMPT" || d.DefaultTaxRateID != "US_HIGH" ||
		d.TaxRateMap["8.50"] != "US_HIGH" || d.TaxRateMap["0.00"] != "US_EXEMPT" {
		t.Fatalf("defaults: %+v", d)
	}
	doc, filled, err := fillPolicy([]byte(`{"default_tax_rate_id":"MINE","sync_products":true,"zero_tax_rate_id":""}`), d)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	_ = json.Unmarshal(doc, &got)
	if got["default_tax_rate_id"] != "MINE" || got["sync_products"] != true || got["zero_tax_rate_id"] != "US_EXEMPT" {
		t.Fatalf("policy: %s", doc)
	}
	if len(filled) != 3 {
		t.Fatalf("filled %v, want default_ledger_account_id, tax_rate_map, zero_tax_rate_id", filled)
	}
}

func TestNewAPIKeyIsOpaqueAndUnique(t *testing.T) {
	t.Parallel()
	a, _ := NewAPIKey()
	b, _ := NewAPIKey()
	if a == b || len(a) != len(APIKeyPrefix)+43 {
		t.Fatalf("keys %q %q", a, b)
	}
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			t.Fatalf("key %q has %q", a, r)
		}
	}
}
