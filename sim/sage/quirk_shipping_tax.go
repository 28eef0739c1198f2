package sagesim

import "github.com/ledgersync/ledger/libs/money"

// shippingTax is quirk ShippingTaxRecomputed: Sage computes the shipping tax as
// shipping_net_amount × the rate of shipping_tax_rate_id, rounded half-up to
// 2 dp, and ignores a sent shipping_tax_amount. So shipping_tax_amount 0 with
// GB_STANDARD adds 20 % VAT to the total (a phantom outstanding balance once
// the shop's total is paid); GB_ZERO keeps it at 0. Off, a sent amount is kept.
func shippingTax(q Quirks, net money.Amount, rate *TaxRate, sent *money.Amount) money.Amount {
	if !q.ShippingTaxRecomputed && sent != nil {
		return sent.Cents()
	}
	if rate == nil {
		return money.Zero
	}
	return net.MulDecimal(rate.Percentage.Decimal().Shift(-2)).Cents()
}
