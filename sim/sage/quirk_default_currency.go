package sagesim

// Quirk §28 (B8, "default_currency_id is misleading"; no such field exists in
// the v3.1 swagger): a contact's default_currency_id is accepted and ignored, so
// a contact created with only default_currency_id trades in the business's base
// currency. The naive client then invoices it in that currency and, with §31,
// gets
//
//	422 [{"$severity":"error","$dataCode":"RecordInvalid","$message":"Currency must match the contact's currency","$source":"currency_id"}]
//
// currency_id is what sets the contact's currency. With the quirk off,
// default_currency_id sets it when currency_id is absent.
func contactCurrencyID(q Quirks, in *contactInput) *string {
	if in.CurrencyID != nil && *in.CurrencyID != "" {
		return in.CurrencyID
	}
	if !q.DefaultCurrencyIgnored && in.DefaultCurrencyID != nil && *in.DefaultCurrencyID != "" {
		return in.DefaultCurrencyID
	}
	return nil
}
