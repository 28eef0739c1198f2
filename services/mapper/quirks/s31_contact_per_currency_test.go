package quirks

import (
	"slices"
	"testing"
)

func TestContactVariant(t *testing.T) {
	t.Parallel()
	if k, c := ContactVariant("M42", " eur", "GBP"); k != "M42" || c != "EUR" {
		t.Errorf("got %s %s", k, c)
	}
	if _, c := ContactVariant("M42", "", "GBP"); c != "GBP" {
		t.Errorf("empty currency: %s", c)
	}
	cs := TradingCurrencies()
	if !slices.IsSorted(cs) || !slices.Contains(cs, "EUR") || len(cs) != len(currencySuffix) {
		t.Errorf("trading currencies %v", cs)
	}
}
