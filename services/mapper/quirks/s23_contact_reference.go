package quirks

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// MaxContactReference is Sage's limit on contact.reference (spec maxLength 10).
const MaxContactReference = 10

// currencySuffix gives the common trading currencies distinct letters, so one
// customer's variants in, say, CAD and CHF never share a reference; any other
// currency uses its first letter.
var currencySuffix = map[string]byte{
	"EUR": 'E', "USD": 'U', "GBP": 'G', "CAD": 'C', "CHF": 'F', "AUD": 'A',
	"NZD": 'N', "JPY": 'J', "SEK": 'S', "NOK": 'K', "DKK": 'D', "PLN": 'P',
	"CZK": 'Z', "HUF": 'H', "CNY": 'Y', "HKD": 'X', "SGD": 'R', "INR": 'I',
	"ZAR": 'Q', "MXN": 'M', "BRL": 'B', "TRY": 'T', "AED": 'W', "ILS": 'L',
	"RON": 'O', "ISK": 'V',
}

// CurrencySuffix is the one letter a non-base-currency contact variant appends
// to its reference.
func CurrencySuffix(currency string) string {
	c := strings.ToUpper(strings.TrimSpace(currency))
	if l, ok := currencySuffix[c]; ok {
		return string(l)
	}
	if c == "" {
		return "X"
	}
	return c[:1]
}

// GuestHash is the hex SHA-256 of a guest's trimmed, lower-cased email.
func GuestHash(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

// ContactReference is quirk 23: Sage's contact.reference is unique and at
// most 10 characters. The reference is deterministic, so a replay finds the same
// contact:
//
//   - a registered customer is "M" + its id (base 36, upper case, when the
//     decimal id does not fit);
//   - a guest is "G" + the first 9 hex characters of GuestHash(email);
//   - a contact trading in a currency other than the business's base currency
//     (one Sage contact per customer and currency, quirk 31) appends
//     CurrencySuffix(currency); a guest's hash is then cut to 8 characters.
//
// Collisions (a 36-bit guest hash collides at scale) are detected through
// entity_xref by the mapper's reference claims and resolved with
// ReferenceCandidates.
func ContactReference(customerID int64, email, currency, baseCurrency string) string {
	suffix := ""
	if !strings.EqualFold(strings.TrimSpace(currency), strings.TrimSpace(baseCurrency)) {
		suffix = CurrencySuffix(currency)
	}
	room := MaxContactReference - 1 - len(suffix)
	if customerID <= 0 {
		return "G" + GuestHash(email)[:room] + suffix
	}
	id := strconv.FormatInt(customerID, 10)
	if len(id) > room {
		id = strings.ToUpper(strconv.FormatInt(customerID, 36))
	}
	if len(id) > room { // ids beyond 36^8: keep the low digits, deterministically
		id = id[len(id)-room:]
	}
	return "M" + id + suffix
}

// MaxReferenceCandidates bounds ReferenceCandidates.
const MaxReferenceCandidates = 8

// ReferenceCandidates is the deterministic list of references a contact may
// take, best first: ContactReference, then, for when that one is already
// claimed by another customer (entity_xref kind "contact_ref"), alternatives
// that depend only on the customer and currency: a guest's hash over
// "email#n", a registered customer's id in base 36 with a disambiguating
// digit. Every candidate fits Sage's 10 characters and keeps the kind letter
// and currency suffix, so the same customer always ends on the same
// reference whatever order the collisions were met in.
func ReferenceCandidates(customerID int64, email, currency, baseCurrency string) []string {
	first := ContactReference(customerID, email, currency, baseCurrency)
	out := []string{first}
	suffix := ""
	if !strings.EqualFold(strings.TrimSpace(currency), strings.TrimSpace(baseCurrency)) {
		suffix = CurrencySuffix(currency)
	}
	room := MaxContactReference - 1 - len(suffix)
	for n := 1; len(out) < MaxReferenceCandidates; n++ {
		var c string
		if customerID <= 0 {
			c = "G" + GuestHash(email + "#" + strconv.Itoa(n))[:room] + suffix
		} else {
			id := strings.ToUpper(strconv.FormatInt(customerID, 36))
			if len(id) > room-1 {
				id = id[len(id)-(room-1):]
			}
			c = "M" + id + strconv.Itoa(n) + suffix
		}
		if c != first {
			out = append(out, c)
		}
	}
	return out
}
