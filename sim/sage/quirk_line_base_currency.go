package sagesim

// lineBaseCurrencyMessage is the simulator's wording [I]: Sage is known to
// refuse, not with which message.
const lineBaseCurrencyMessage = "This field cannot be set; it is calculated from the exchange rate."

// checkLineBaseCurrency is quirk LineBaseCurrencyRejected: Sage refuses the
// line base_currency_* fields, although its POST schema lists them, and derives
// them from the header exchange_rate; one entry per field sent, after the
// umbrella entry. Off, the sent values are kept on the line (header base
// amounts are still computed).
func checkLineBaseCurrency(q Quirks, l *invoiceLineInput) []APIError {
	var errs problems
	for _, f := range []struct {
		name string
		sent bool
	}{
		{"base_currency_unit_price", l.BaseCurrencyUnitPrice != nil}, {"base_currency_net_amount", l.BaseCurrencyNetAmount != nil},
		{"base_currency_tax_amount", l.BaseCurrencyTaxAmount != nil}, {"base_currency_total_amount", l.BaseCurrencyTotalAmount != nil},
		{"base_currency_discount_amount", l.BaseCurrencyDiscountAmount != nil},
	} {
		errs.when(q.LineBaseCurrencyRejected && f.sent, apiErr(CodeRecordInvalid, lineBaseCurrencyMessage, "line_items."+f.name))
	}
	return errs
}
