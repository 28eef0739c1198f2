package sagesim

// Quirk §7 (B8): every invoice line must carry currency_tax_amount (the line tax in
// the document currency), zero-rated lines included. The field is not in Sage's
// v3.1 swagger; B8 reports Sage requires it, so the simulator enforces it while
// the quirk is on. A naive line without it gets
//
//	{"$dataCode":"RecordInvalid","$message":"This field is required.","$source":"line_items.currency_tax_amount"}
//
// (after the §20 umbrella entry).
func checkCurrencyTaxAmount(q Quirks, line *invoiceLineInput) []APIError {
	if !q.CurrencyTaxAmountRequired || line.CurrencyTaxAmount != nil {
		return nil
	}
	return []APIError{required("line_items.currency_tax_amount")}
}
