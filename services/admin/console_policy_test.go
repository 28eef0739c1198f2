package admin

import (
	"errors"
	"reflect"
	"testing"

	"github.com/ledgersync/ledger/libs/policy"
)

func TestPolicyErrorFields(t *testing.T) {
	t.Parallel()
	// The message SetPolicy answers: libs/policy's and the payment-method
	// check's errors, joined one per line.
	p := policy.Default()
	p.TaxRateMap["20"] = "GB_STANDARD"
	p.ZeroTaxRateID = ""
	p.InvoiceNumberPrefix = "TOOLONG1"
	shape := p.Validate()
	refs := policy.References{LedgerAccounts: []string{"L1"}, BankAccounts: []string{"B1"}, TaxRates: []string{"GB_STANDARD", "GB_LOWER", "GB_ZERO"}}
	q := policy.Default()
	q.DefaultLedgerAccountID = "stale"
	q.PaymentMethodMap = map[string]string{"checkmo": "gone"}
	msg := "invalid policy: " + errors.Join(shape, q.CheckReferences(refs),
		errors.New(`payment_method_map["chekmo"]: "chekmo" is not a payment method of the shop (it has: checkmo): use its Magento method code`),
		errors.New(`policy: json: unknown field "colour"`)).Error()

	byField, general := policyErrorFields(msg)
	want := []string{`tax_rate_map["20"]`, "zero_tax_rate_id", "invoice_number_prefix", "default_ledger_account_id",
		`payment_method_map["checkmo"]`, `payment_method_map["chekmo"]`}
	for _, f := range want {
		if len(byField[f]) != 1 {
			t.Errorf("field %s: %q", f, byField[f])
		}
	}
	if len(byField) != len(want) {
		t.Errorf("fields %v, want %v", reflect.ValueOf(byField).MapKeys(), want)
	}
	if len(general) != 1 || general[0] != `policy: json: unknown field "colour"` {
		t.Errorf("general %q", general)
	}
	// A message that is not about policy fields stays whole.
	if f, g := policyErrorFields("the policy maps payment methods, and the shop's list could not be read"); len(f) != 0 || len(g) != 1 {
		t.Errorf("unavailable shop: %v %q", f, g)
	}
}
