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

func str(p *string) string { return valueOr(p, "") }

func valueOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func set[T any](dst, p *T) {
	if p != nil {
		*dst = *p
	}
}

// problems collects the entries of a 422 answer in the order Sage sends them.
type problems []APIError

func (p *problems) when(failed bool, e ...APIError) {
	if failed {
		*p = append(*p, e...)
	}
}

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

// lookup resolves the id sent in p among items: missing fails only when req,
// unknown with message (under code) on source.
func lookup[T interface{ ref() Base }](errs *problems, items []T, p *string, source string, req bool, code, message string) (T, bool) {
	it, ok := byID(items, str(p))
	switch {
	case str(p) == "":
		errs.when(req, required(source))
	case !ok:
		*errs = append(*errs, apiErr(code, message, source))
	}
	return it, ok
}

// taxRateOf resolves an optional tax rate id sent on source.
func taxRateOf(errs *problems, p *string, source string) *TaxRate {
	if t, ok := lookup(errs, taxRates, p, source, false, CodeRecordInvalid, "Couldn't find tax rate."); ok {
		return &t
	}
	return nil
}

// ledgerAccountLocked resolves a ledger account id sent on source; sales
// requires one visible in sales.
func ledgerAccountLocked(errs *problems, b *business, p *string, source string, req, sales bool) *LedgerAccount {
	la, ok := lookup(errs, b.ledgerAccounts, p, source, req, CodeRecordNotFound, "Couldn't find record.")
	switch {
	case !ok:
		return nil
	case sales && !la.VisibleInSales:
		*errs = append(*errs, apiErr(CodeRecordInvalid, "The ledger account is not valid for sales.", source))
		return nil
	}
	return &la
}

// customerLocked resolves contact_id to a live customer of b. Sage answers a
// vendor (or unknown) contact on a sales document or a payment with the type's
// name and no $source.
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

// currencyOf resolves currency_id, or def when none is sent or it is unknown.
func currencyOf(id *string, def Base, errs *problems) (Base, bool) {
	if cur, ok := lookup(errs, currencies, id, "currency_id", false, CodeRecordInvalid, "Couldn't find currency."); ok {
		return cur, true
	}
	return def, str(id) == ""
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

func byID[T interface{ ref() Base }](items []T, id string) (T, bool) {
	i := slices.IndexFunc(items, func(it T) bool { return it.ref().ID == id })
	if i < 0 {
		var none T
		return none, false
	}
	return items[i], true
}

func containsFold(s, lowerNeedle string) bool {
	return strings.Contains(strings.ToLower(s), lowerNeedle)
}

func refOf[T interface{ ref() Base }](p *T) *Base {
	if p == nil {
		return nil
	}
	return new((*p).ref())
}
