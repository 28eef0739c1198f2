package sagesim

// contactCurrencyMessage is the [I] wording of the §31 rejection (B8 reports the
// lock, not the message).
const contactCurrencyMessage = "Currency must match the contact's currency"

// Quirk §31 (B8: "Sage locks each contact to one transaction currency"): a sales
// document without currency_id is in its contact's currency; one whose
// currency_id differs from the contact's gets
//
//	422 [{"$severity":"error","$dataCode":"RecordInvalid","$message":"Currency must match the contact's currency","$source":"currency_id"}]
//
// and a PUT that changes the currency_id of a contact with transactions gets
//
//	422 [{"$severity":"error","$dataCode":"RecordInvalid","$message":"Currency cannot be changed once the contact has transactions","$source":"currency_id"}]
//
// With the quirk off any currency is accepted on documents and contacts.
func checkDocumentCurrency(q Quirks, contact *Contact, currencyID string) []APIError {
	if !q.ContactCurrencyLocked || contact == nil || currencyID == contact.Currency.ID {
		return nil
	}
	return []APIError{apiErr(CodeRecordInvalid, contactCurrencyMessage, "currency_id")}
}

// checkContactCurrencyChange applies §31 to PUT /contacts: a contact that has
// transactions (it is no longer deletable) keeps its currency.
func checkContactCurrencyChange(q Quirks, existing *Contact, currencyID *string) []APIError {
	if !q.ContactCurrencyLocked || existing == nil || existing.Deletable || currencyID == nil ||
		*currencyID == existing.Currency.ID {
		return nil
	}
	return []APIError{apiErr(CodeRecordInvalid, "Currency cannot be changed once the contact has transactions", "currency_id")}
}
