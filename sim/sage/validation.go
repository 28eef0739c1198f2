package sagesim

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ledgersync/ledger/libs/money"
)

// one is the exchange rate of the base currency.
var one = money.MustParse("1")

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// problems collects the entries of a 422 answer in the order Sage sends them.
type problems []APIError

// when adds the entries e if failed.
func (p *problems) when(failed bool, e ...APIError) {
	if failed {
		*p = append(*p, e...)
	}
}

// set copies a sent value (p not nil) to dst.
func set[T any](dst, p *T) {
	if p != nil {
		*dst = *p
	}
}

// tooLong reports whether s has more than n characters.
func tooLong(s string, n int) bool { return utf8.RuneCountInString(s) > n }

// maxLength is Sage's entry for a value longer than n characters, or nil:
// "Terms and conditions is too long (maximum is 2000 characters)" on
// terms_and_conditions. The field name comes from the last part of source.
func maxLength(value string, n int, source string) []APIError {
	if !tooLong(value, n) {
		return nil
	}
	field := source[strings.LastIndex(source, ".")+1:]
	name := strings.ToUpper(field[:1]) + strings.ReplaceAll(field[1:], "_", " ")
	return []APIError{apiErr(CodeRecordInvalid, fmt.Sprintf("%s is too long (maximum is %d characters)", name, n), source)}
}

// checkDate validates a YYYY-MM-DD field.
func checkDate(p *string, source string, req bool) []APIError {
	switch _, err := time.Parse(time.DateOnly, str(p)); {
	case str(p) == "" && req:
		return []APIError{required(source)}
	case str(p) != "" && err != nil:
		return []APIError{apiErr(CodeRecordInvalid, "is not a valid date (YYYY-MM-DD)", source)}
	}
	return nil
}

// customerLocked resolves contact_id to a live customer of b. Sage answers a
// vendor (or unknown) contact on a sales document or a payment with the type's
// name and no $source. s.mu must be held.
func customerLocked(b *business, id *string, errs *problems) *Contact {
	c, ok := b.contacts.live(str(id))
	switch {
	case str(id) == "":
		*errs = append(*errs, required("contact_id"))
	case !ok || !c.IsCustomer():
		*errs = append(*errs, apiErr(CodeRecordInvalid, "Couldn't find Customer.", ""))
	default:
		return c
	}
	return nil
}

// currencyOf resolves currency_id; def applies when none is sent or it is
// unknown (then ok is false).
func currencyOf(id *string, def Base, errs *problems) (cur Base, ok bool) {
	if str(id) == "" {
		return def, true
	}
	if cur, ok = byID(currencies, *id); !ok {
		*errs = append(*errs, apiErr(CodeRecordInvalid, "Couldn't find currency.", "currency_id"))
		return def, false
	}
	return cur, true
}

// exchangeRate checks exchange_rate (> 0) and returns the rate of a document in
// currency: the one sent for a foreign currency, else 1 (as Sage documents for
// payments; for sales documents Sage would use its own rate [I]).
func exchangeRate(sent *money.Amount, currency Base, errs *problems) money.Amount {
	switch {
	case sent != nil && sent.Sign() <= 0:
		*errs = append(*errs, apiErr(CodeRecordInvalid, "must be greater than 0", "exchange_rate"))
	case sent != nil && currency.ID != currencies[0].ID:
		return *sent
	}
	return one
}

// byID finds the item with id in reference data.
func byID[T interface{ ref() Base }](items []T, id string) (T, bool) {
	i := slices.IndexFunc(items, func(it T) bool { return it.ref().ID == id })
	if i < 0 {
		var none T
		return none, false
	}
	return items[i], true
}

// containsFold reports whether s contains the lower-case needle, ignoring case.
func containsFold(s, lowerNeedle string) bool {
	return strings.Contains(strings.ToLower(s), lowerNeedle)
}
