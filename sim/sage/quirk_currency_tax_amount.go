package sagesim

// checkCurrencyTaxAmount is quirk CurrencyTaxAmountRequired: Sage requires
// currency_tax_amount (the line tax in the document currency) on every sales
// document line, zero-rated ones included, although its v3.1 schema does not
// list the field. A line without it fails "This field is required." on
// line_items.currency_tax_amount, after the umbrella entry.
func checkCurrencyTaxAmount(q Quirks, line *invoiceLineInput) []APIError {
	if !q.CurrencyTaxAmountRequired || line.CurrencyTaxAmount != nil {
		return nil
	}
	return []APIError{required("line_items.currency_tax_amount")}
}
