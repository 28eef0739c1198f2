package sagesim

// contactCurrencyID is quirk DefaultCurrencyIgnored: Sage accepts a contact's
// default_currency_id (not in its v3.1 schema) and ignores it, so such a
// contact trades in the base currency and, with ContactCurrencyLocked, its
// foreign-currency invoices fail. Only currency_id sets the currency. Off,
// default_currency_id sets it when currency_id is absent. source is the field
// the currency came from.
func contactCurrencyID(q Quirks, in *contactInput) (id *string, source string) {
	if str(in.CurrencyID) != "" {
		return in.CurrencyID, "currency_id"
	}
	if !q.DefaultCurrencyIgnored && str(in.DefaultCurrencyID) != "" {
		return in.DefaultCurrencyID, "default_currency_id"
	}
	return nil, ""
}
