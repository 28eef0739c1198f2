package quirks

import (
	"slices"
	"strings"
)

// ContactVariant is quirk 31: Sage locks a contact to one transaction
// currency ("Currency must match the contact's currency"), so Ledger keeps one
// Sage contact per (customer, currency). The variant's entity_xref key is the
// customer's identity and its currency column the currency; the currency is
// upper-cased, and an empty one is the base currency. Its reference carries
// the quirk 23 one-letter currency suffix outside the base currency.
func ContactVariant(identity, currency, baseCurrency string) (xrefKey, xrefCurrency string) {
	c := strings.ToUpper(strings.TrimSpace(currency))
	if c == "" {
		c = strings.ToUpper(strings.TrimSpace(baseCurrency))
	}
	return identity, c
}

// TradingCurrencies lists the currencies that have a reference suffix: the
// candidates customer.upserted checks for existing contact variants.
func TradingCurrencies() []string {
	out := make([]string, 0, len(currencySuffix))
	for c := range currencySuffix {
		out = append(out, c)
	}
	// Stable order: the writes of a customer must be byte for byte repeatable.
	slices.Sort(out)
	return out
}
