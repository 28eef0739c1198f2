package quirks

import (
	"testing"

	"github.com/ledgersync/ledger/libs/money"
)

func TestShippingTaxRate(t *testing.T) {
	t.Parallel()
	if id, z := ShippingTaxRate(money.MustParse("0"), "GB_ZERO", "GB_STANDARD"); id != "GB_ZERO" || !z {
		t.Errorf("untaxed shipping: got %s %v", id, z)
	}
	if id, z := ShippingTaxRate(money.MustParse("0.001"), "GB_ZERO", "GB_STANDARD"); id != "GB_ZERO" || !z {
		t.Errorf("sub-penny tax: got %s %v", id, z)
	}
	if id, z := ShippingTaxRate(money.MustParse("1.00"), "GB_ZERO", "GB_STANDARD"); id != "GB_STANDARD" || z {
		t.Errorf("taxed shipping: got %s %v", id, z)
	}
}
