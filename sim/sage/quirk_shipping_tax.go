package sagesim

import "github.com/ledgersync/ledger/libs/money"

// Quirk §32 (B8, and Sage's swagger: "the shipping tax is calculated based on the
// shipping_net_amount and the shipping_tax_rate"): shipping tax is recomputed as
// shipping_net_amount × rate(shipping_tax_rate_id), rounded half-up to 2 dp, and a
// sent shipping_tax_amount is ignored. A naive payload with shipping_tax_amount 0
// and shipping_tax_rate_id GB_STANDARD gets 20 % VAT added to its total (a phantom
// outstanding balance); GB_ZERO keeps it at 0. With the quirk off the sent amount
// is kept (and computed only when not sent).
func shippingTax(q Quirks, net money.Amount, rate *TaxRate, sent *money.Amount) money.Amount {
	if !q.ShippingTaxRecomputed && sent != nil {
		return sent.Cents()
	}
	if rate == nil {
		return money.Zero
	}
	return net.MulDecimal(rate.Percentage.Decimal().Shift(-2)).Cents()
}
