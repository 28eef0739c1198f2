package quirks

import "strings"

// ContactCurrency is quirk 28: Sage's default_currency_id does not set the
// currency a contact trades in, so the mapper sets the contact's currency_id
// (never default_currency_id) to the document's currency, upper-cased. An
// empty document currency falls back to the business's base currency.
func ContactCurrency(documentCurrency, baseCurrency string) string {
	c := strings.ToUpper(strings.TrimSpace(documentCurrency))
	if c == "" {
		c = strings.ToUpper(strings.TrimSpace(baseCurrency))
	}
	return c
}
