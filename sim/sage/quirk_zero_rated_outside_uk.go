package sagesim

// zeroRatedMessage is Sage's wording, with "UK" for the rule since Brexit
// (older reports quote "outside the EU").
const zeroRatedMessage = "must be 'Zero Rated' for Customers outside the UK"

// checkZeroRated is quirk ZeroRatedOutsideUK: a UK business refuses a non-zero
// tax rate on any line or on shipping of a sales document for a customer
// outside the UK, on line_items.tax_rate_id or shipping_tax_rate_id. Any
// zero-percentage rate passes; a line without tax_rate_id is judged on its
// ledger account's default rate.
func checkZeroRated(q Quirks, cross bool, rate *TaxRate, source string) []APIError {
	if !q.ZeroRatedOutsideUK || !cross || rate == nil || rate.ZeroType {
		return nil
	}
	return []APIError{apiErr(CodeRecordInvalid, zeroRatedMessage, source)}
}

// crossBorder reports whether a sales document of b for contact c crosses the
// border: a GB business and a contact whose main address is in another country
// [I] (a contact without a country counts as UK).
func crossBorder(b *business, c *Contact) bool {
	return c != nil && b.info.CountryOfRegistration.ID == "GB" && c.MainAddress != nil && c.MainAddress.Country != nil &&
		c.MainAddress.Country.ID != "" && c.MainAddress.Country.ID != "GB"
}
