package sagesim

// zeroRatedMessage is Sage's wording as B8 reports it, with "UK" for the
// post-Brexit rule (B8 quotes "outside the EU").
const zeroRatedMessage = "must be 'Zero Rated' for Customers outside the UK"

// Quirk §29 (B8): a UK business rejects a non-zero tax rate on any line or on
// shipping of a sales document for a customer outside the UK. "Outside the UK"
// is the contact's main address country not being GB [I] (a contact without a
// country counts as UK). A naive EUR invoice to a French customer with
// GB_STANDARD lines gets (after the §20 umbrella)
//
//	{"$severity":"error","$dataCode":"RecordInvalid","$message":"must be 'Zero Rated' for Customers outside the UK","$source":"line_items.tax_rate_id"}
//
// and, for shipping_tax_rate_id GB_STANDARD, the same message with
// "$source":"shipping_tax_rate_id". Any zero-percentage rate (GB_ZERO,
// GB_EXEMPT, GB_NO_TAX) passes. A line without tax_rate_id takes its ledger
// account's default rate and is judged on that.
func checkZeroRated(q Quirks, cross bool, rate *TaxRate, source string) []APIError {
	if !q.ZeroRatedOutsideUK || !cross || rate == nil || rate.ZeroType {
		return nil
	}
	return []APIError{apiErr(CodeRecordInvalid, zeroRatedMessage, source)}
}

// crossBorder reports whether a sales document of b for contact c is
// cross-border in the sense of §29 and §30: a GB business and a contact whose
// main address is in another country.
func crossBorder(b *business, c *Contact) bool {
	if c == nil || !b.ukBusiness() || c.MainAddress == nil || c.MainAddress.Country == nil {
		return false
	}
	return c.MainAddress.Country.ID != "" && c.MainAddress.Country.ID != "GB"
}
