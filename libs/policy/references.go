package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Reference-cache kinds (the ref_cache rows the admin service writes at connect,
// every 24 h and on demand). Each row's doc is the JSON array of Sage's $items.
const (
	RefLedgerAccounts = "ledger_accounts" // GET /ledger_accounts?visible_in=sales
	RefTaxRates       = "tax_rates"
	RefBankAccounts   = "bank_accounts"
	RefPaymentMethods = "payment_methods"
)

// RefKinds lists every kind CheckReferences uses.
var RefKinds = []string{RefLedgerAccounts, RefTaxRates, RefBankAccounts, RefPaymentMethods}

// References are the ids of a business's Sage reference data. A nil list means
// the kind was never fetched: its ids are not checked (an empty, non-nil list
// means the business has none, and every id of that kind is stale).
type References struct {
	LedgerAccounts []string // sales-visible ledger accounts
	TaxRates       []string
	BankAccounts   []string
	PaymentMethods []string
}

// ParseReferences builds References from ref_cache documents by kind (JSON
// arrays of objects with an "id"). Missing kinds stay nil.
func ParseReferences(docs map[string][]byte) (References, error) {
	var r References
	var errs []error
	for _, kind := range RefKinds {
		doc, ok := docs[kind]
		if !ok || doc == nil {
			continue
		}
		var items []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(doc, &items); err != nil {
			errs = append(errs, fmt.Errorf("ref_cache %s is not a JSON array of Sage items: %w", kind, err))
			continue
		}
		ids := make([]string, 0, len(items))
		for _, it := range items {
			if it.ID != "" {
				ids = append(ids, it.ID)
			}
		}
		switch kind {
		case RefLedgerAccounts:
			r.LedgerAccounts = ids
		case RefTaxRates:
			r.TaxRates = ids
		case RefBankAccounts:
			r.BankAccounts = ids
		case RefPaymentMethods:
			r.PaymentMethods = ids
		}
	}
	return r, errors.Join(errs...)
}

// ReferenceError is one policy id missing from the Sage reference cache.
type ReferenceError struct {
	// Field is the policy field, e.g. "payment_method_map[\"checkmo\"]".
	Field string
	// Kind is the reference-cache kind the id should be in.
	Kind string
	// ID is the stale or unknown id ("" = the field is required but empty).
	ID string
}

func (e *ReferenceError) Error() string {
	what := map[string]string{
		RefLedgerAccounts: "sales-visible ledger account", RefTaxRates: "tax rate",
		RefBankAccounts: "bank account", RefPaymentMethods: "payment method",
	}[e.Kind]
	if e.ID == "" {
		return fmt.Sprintf("%s is not set: choose a %s of the Sage business (ledgerctl policy set, or reconnect Sage to fill the defaults)", e.Field, what)
	}
	return fmt.Sprintf("%s %q is not a %s of the Sage business: choose one it has, or refresh the reference data if it was just created in Sage", e.Field, e.ID, what)
}

// Check reports a *ReferenceError when id is not in the kind's list. A kind
// that was never fetched (nil) accepts any non-empty id.
func (r References) Check(field, kind, id string) error {
	if id == "" {
		return &ReferenceError{Field: field, Kind: kind}
	}
	var list []string
	switch kind {
	case RefLedgerAccounts:
		list = r.LedgerAccounts
	case RefTaxRates:
		list = r.TaxRates
	case RefBankAccounts:
		list = r.BankAccounts
	case RefPaymentMethods:
		list = r.PaymentMethods
	}
	if list == nil || slices.Contains(list, id) {
		return nil
	}
	return &ReferenceError{Field: field, Kind: kind, ID: id}
}

// Uses lists every Sage id the policy refers to as (field, kind, id), required
// ones included even when empty, in a stable order.
func (p Policy) Uses() []ReferenceError {
	var out []ReferenceError
	add := func(field, kind, id string, required bool) {
		if id != "" || required {
			out = append(out, ReferenceError{Field: field, Kind: kind, ID: id})
		}
	}
	add("default_ledger_account_id", RefLedgerAccounts, p.DefaultLedgerAccountID, true)
	add("carriage_ledger_account_id", RefLedgerAccounts, p.CarriageLedgerAccountID, false)
	add("gift_card_ledger_account_id", RefLedgerAccounts, p.GiftCardLedgerAccountID, false)
	add("store_credit_ledger_account_id", RefLedgerAccounts, p.StoreCreditLedgerAccountID, false)
	add("adjustments_ledger_account_id", RefLedgerAccounts, p.AdjustmentsLedgerAccountID, false)
	add("rounding_ledger_account_id", RefLedgerAccounts, p.RoundingLedgerAccountID, false)
	add("default_tax_rate_id", RefTaxRates, p.DefaultTaxRateID, true)
	add("zero_tax_rate_id", RefTaxRates, p.ZeroTaxRateID, true)
	for _, pct := range sortedKeys(p.TaxRateMap) {
		add(fmt.Sprintf("tax_rate_map[%q]", pct), RefTaxRates, p.TaxRateMap[pct], true)
	}
	add("default_bank_account_id", RefBankAccounts, p.DefaultBankAccountID, false)
	for _, m := range sortedKeys(p.PaymentMethodMap) {
		add(fmt.Sprintf("payment_method_map[%q]", m), RefBankAccounts, p.PaymentMethodMap[m], false)
	}
	if u := p.UnitemisedCredit; u != nil {
		add("unitemised_credit.bank_account_id", RefBankAccounts, u.BankAccountID, true)
	}
	add("default_sage_payment_method_id", RefPaymentMethods, p.DefaultSagePaymentMethodID, false)
	for _, m := range sortedKeys(p.SagePaymentMethodMap) {
		add(fmt.Sprintf("sage_payment_method_map[%q]", m), RefPaymentMethods, p.SagePaymentMethodMap[m], false)
	}
	return out
}

// CheckReferences validates every Sage id of the policy against the reference
// cache: each stale or missing id is a *ReferenceError naming the field and
// the fix, joined. The admin service calls it before storing a policy, so a
// typo is a form error, never a dead letter.
func (p Policy) CheckReferences(r References) error {
	var errs []error
	for _, u := range p.Uses() {
		if err := r.Check(u.Field, u.Kind, u.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// FieldOf returns the policy field of the first *ReferenceError in err, "" if none.
func FieldOf(err error) string {
	var re *ReferenceError
	if errors.As(err, &re) {
		return re.Field
	}
	return ""
}
