package quirks

import (
	"testing"

	"github.com/ledgersync/ledger/libs/money"
)

func TestLineTaxCarriesBothFieldsEvenWhenZero(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"0", "0.00", "4.165", "20"} {
		got := LineTax(money.MustParse(in))
		want := money.MustParse(in).Cents()
		if !got.TaxAmount.Equal(want) || !got.CurrencyTaxAmount.Equal(want) {
			t.Errorf("LineTax(%s) = %+v, want both %s", in, got, want)
		}
	}
}
