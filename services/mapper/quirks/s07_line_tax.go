package quirks

import "github.com/ledgersync/ledger/libs/money"

// LineTaxAmounts are the two tax fields every invoice and credit-note line
// carries.
type LineTaxAmounts struct {
	// TaxAmount is Sage's tax_amount.
	TaxAmount money.Amount
	// CurrencyTaxAmount is currency_tax_amount: the same tax in the document
	// currency.
	CurrencyTaxAmount money.Amount
}

// LineTax is quirk 7: Sage answers "field is required" (422) for a line
// without currency_tax_amount, zero-rated lines included, and v3.1 is strict
// about tax_amount too. So every line carries both, always, rounded to pennies;
// amounts are already in the document currency (Magento's non-base getters), so
// the two are equal.
func LineTax(lineTax money.Amount) LineTaxAmounts {
	t := lineTax.Cents()
	return LineTaxAmounts{TaxAmount: t, CurrencyTaxAmount: t}
}
