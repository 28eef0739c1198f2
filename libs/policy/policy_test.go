package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDefaultsAndValidate(t *testing.T) {
	p, err := Parse([]byte(`{"default_ledger_account_id":"L1","invoice_number_prefix":"MAG-",
		"b2c_consolidation":{"enabled":true,"threshold":"50.00"},"rounding_tolerance":0.02}`))
	if err != nil {
		t.Fatal(err)
	}
	if !p.B2C.Enabled || p.B2C.Threshold.String() != "50.00" || p.Tolerance().String() != "0.02" {
		t.Fatalf("decoded %+v", p)
	}
	if p.EUType("virtual") != Services || p.EUType("simple") != Goods || p.EUType("odd") != Goods {
		t.Fatal("product type map defaults")
	}
	_, err = Parse([]byte(`{"eu_goods_services_default":"BOTH","tax_rate_map":{"20":"X"},"rounding_tolerance":"5"}`))
	for _, want := range []string{"eu_goods_services_default", `tax_rate_map key "20"`, "rounding_tolerance"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if _, err := Parse([]byte(`{"unknown_knob":1}`)); err == nil {
		t.Error("unknown fields must be refused")
	}
}

func TestBankAccount(t *testing.T) {
	p := Default()
	p.PaymentMethodMap = map[string]string{"checkmo": "", "stripe_payments": "B1"}
	if _, ok := p.BankAccount("checkmo"); ok {
		t.Error("a method mapped to \"\" is left unpaid")
	}
	if id, ok := p.BankAccount("stripe_payments"); !ok || id != "B1" {
		t.Error("mapped method")
	}
	if _, ok := p.BankAccount("paypal_express"); ok {
		t.Error("unlisted without a default is unmapped")
	}
	p.DefaultBankAccountID = "B0"
	if id, ok := p.BankAccount("paypal_express"); !ok || id != "B0" {
		t.Error("unlisted uses the default")
	}
}

func TestCheckReferences(t *testing.T) {
	p := Default()
	p.DefaultLedgerAccountID = "L1"
	p.PaymentMethodMap = map[string]string{"checkmo": "GONE"}
	p.SagePaymentMethodMap = map[string]string{"checkmo": "CHECK"}
	refs, err := ParseReferences(map[string][]byte{
		RefLedgerAccounts: []byte(`[{"id":"L1","displayed_as":"Sales (4000)"}]`),
		RefTaxRates:       []byte(`[{"id":"GB_STANDARD"},{"id":"GB_ZERO"},{"id":"GB_LOWER"}]`),
		RefBankAccounts:   []byte(`[{"id":"B1"}]`),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = p.CheckReferences(refs)
	if err == nil || !strings.Contains(err.Error(), `payment_method_map["checkmo"] "GONE" is not a bank account`) {
		t.Fatalf("stale bank account: %v", err)
	}
	var re *ReferenceError
	if !errors.As(err, &re) || re.Kind != RefBankAccounts || FieldOf(err) != `payment_method_map["checkmo"]` {
		t.Fatalf("typed error: %#v", re)
	}
	// payment_methods was never fetched: not checked.
	p.PaymentMethodMap["checkmo"] = "B1"
	if err := p.CheckReferences(refs); err != nil {
		t.Fatal(err)
	}
	p.DefaultLedgerAccountID = ""
	if err := p.CheckReferences(refs); err == nil || !strings.Contains(err.Error(), "default_ledger_account_id is not set") {
		t.Fatalf("required field: %v", err)
	}
}
