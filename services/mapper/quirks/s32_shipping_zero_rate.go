package quirks

import "github.com/ledgersync/ledger/libs/money"

// ShippingTaxRate is quirk 32: Sage recomputes shipping VAT as
// shipping_tax_rate_id × shipping_net_amount and ignores shipping_tax_amount, so
// a shop that charged no tax on shipping but sends a standard rate gets a
// phantom 20 % added to the invoice total (and an outstanding balance that
// never clears). Untaxed shipping (shipping_tax_amount == 0) therefore uses the
// business's zero rate (GB_ZERO on UK businesses); taxed shipping keeps
// mappedRateID, the rate mapped from its applied percentage.
//
// zeroApplied reports whether the zero rate was chosen by this rule.
func ShippingTaxRate(shippingTax money.Amount, zeroRateID, mappedRateID string) (rateID string, zeroApplied bool) {
	if shippingTax.Cents().IsZero() {
		return zeroRateID, true
	}
	return mappedRateID, false
}
