package sagesim

// contactCurrencyMessage is the simulator's wording [I]: Sage is known to
// refuse, not with which message.
const contactCurrencyMessage = "Currency must match the contact's currency"

// checkDocumentCurrency is quirk ContactCurrencyLocked for sales documents: Sage
// locks each contact to one transaction currency, so a document whose
// currency_id differs from its contact's fails 422 on currency_id. Off, any
// currency is accepted.
func checkDocumentCurrency(q Quirks, contact *Contact, currencyID string) []APIError {
	if !q.ContactCurrencyLocked || contact == nil || currencyID == contact.Currency.ID {
		return nil
	}
	return []APIError{apiErr(CodeRecordInvalid, contactCurrencyMessage, "currency_id")}
}

// checkContactCurrencyChange is the same quirk for PUT /contacts: a contact
// with transactions (no longer deletable) keeps its currency [I] wording.
func checkContactCurrencyChange(q Quirks, existing *Contact, currencyID *string) []APIError {
	if !q.ContactCurrencyLocked || existing == nil || existing.Deletable || currencyID == nil ||
		*currencyID == existing.Currency.ID {
		return nil
	}
	return []APIError{apiErr(CodeRecordInvalid, "Currency cannot be changed once the contact has transactions", "currency_id")}
}
