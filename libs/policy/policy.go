// Package policy is a tenant's sync policy and mappings (DESIGN §3): what to
// sync and how Magento values map onto the tenant's Sage reference data. It is
// stored as JSON in the policies table, validated before it is stored, and
// snapshotted onto each run so a later edit never changes how a past run was made.
package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Policy is one tenant's policy. The zero value is not valid: use Default or Parse.
type Policy struct {
	// Sync behaviour.
	SyncUnpaidInvoices    bool       `json:"sync_unpaid_invoices"`
	SyncZeroValueInvoices bool       `json:"sync_zero_value_invoices"`
	SyncSince             *time.Time `json:"sync_since,omitempty"`
	WebsiteFilter         []int64    `json:"website_filter,omitempty"`
	StoreFilter           []int64    `json:"store_filter,omitempty"`
	SyncProducts          bool       `json:"sync_products"`

	// Tax: applied percentage ("20.00") → Sage tax rate id, with a default, and
	// the business's zero rate (GB_ZERO on UK businesses) for untaxed shipping
	// (quirk §32) and non-domestic customers (§29).
	TaxRateMap       map[string]string `json:"tax_rate_map,omitempty"`
	DefaultTaxRateID string            `json:"default_tax_rate_id"`
	ZeroTaxRateID    string            `json:"zero_tax_rate_id"`

	// Sales-visible ledger account for invoice lines (and shipping when no
	// carriage account is set).
	DefaultLedgerAccountID  string `json:"default_ledger_account_id"`
	CarriageLedgerAccountID string `json:"carriage_ledger_account_id,omitempty"`

	// Payments: Magento method code → Sage bank account id ("" = leave unpaid).
	PaymentMethodMap     map[string]string `json:"payment_method_map,omitempty"`
	DefaultBankAccountID string            `json:"default_bank_account_id,omitempty"`

	// InvoiceNumberPrefix is put in front of Magento's increment id in the Sage
	// reference, never twice.
	InvoiceNumberPrefix string `json:"invoice_number_prefix,omitempty"`
	// CustomerNamePriority orders the sources of a contact's name: company,
	// full_name, email.
	CustomerNamePriority []string `json:"customer_name_priority,omitempty"`
	// HomeCountry is the business's country (ISO-2); other billing countries are
	// cross-border.
	HomeCountry string `json:"home_country"`
	// BaseCurrency is the Sage business's base currency (ISO 4217); contacts
	// trading in another currency get a reference suffix (quirk §23).
	BaseCurrency string `json:"base_currency"`
}

// Default is the policy of a new tenant before its Sage reference data is known.
func Default() Policy {
	return Policy{
		SyncUnpaidInvoices:   true,
		ZeroTaxRateID:        "GB_ZERO",
		DefaultTaxRateID:     "GB_STANDARD",
		TaxRateMap:           map[string]string{"20.00": "GB_STANDARD", "5.00": "GB_LOWER", "0.00": "GB_ZERO"},
		CustomerNamePriority: []string{"company", "full_name", "email"},
		HomeCountry:          "GB",
		BaseCurrency:         "GBP",
	}
}

// Parse decodes a stored document over the defaults and validates it.
func Parse(doc []byte) (Policy, error) {
	p := Default()
	if len(strings.TrimSpace(string(doc))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(doc)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return Policy{}, fmt.Errorf("policy: %w", err)
		}
	}
	return p, p.Validate()
}

// Validate checks the policy's shape. Ids are checked against the Sage reference
// cache elsewhere; this catches what can be known without Sage.
func (p Policy) Validate() error {
	var errs []error
	for pct, id := range p.TaxRateMap {
		if _, err := fmt.Sscanf(pct, "%d.%d", new(int), new(int)); err != nil || !strings.Contains(pct, ".") || len(pct[strings.Index(pct, ".")+1:]) != 2 {
			errs = append(errs, fmt.Errorf("tax_rate_map key %q: use a percentage with two decimals, e.g. \"20.00\"", pct))
		}
		if id == "" {
			errs = append(errs, fmt.Errorf("tax_rate_map[%q]: a Sage tax rate id is required", pct))
		}
	}
	if p.ZeroTaxRateID == "" {
		errs = append(errs, errors.New("zero_tax_rate_id: set the business's zero rate (GB_ZERO on UK businesses)"))
	}
	if len(p.InvoiceNumberPrefix) > 6 {
		errs = append(errs, fmt.Errorf("invoice_number_prefix %q: at most 6 characters", p.InvoiceNumberPrefix))
	}
	for _, src := range p.CustomerNamePriority {
		if src != "company" && src != "full_name" && src != "email" {
			errs = append(errs, fmt.Errorf("customer_name_priority: %q is not one of company, full_name, email", src))
		}
	}
	if len(p.HomeCountry) != 2 {
		errs = append(errs, fmt.Errorf("home_country %q: use an ISO-2 country code such as GB", p.HomeCountry))
	}
	if len(p.BaseCurrency) != 3 || strings.ToUpper(p.BaseCurrency) != p.BaseCurrency {
		errs = append(errs, fmt.Errorf("base_currency %q: use an upper-case ISO 4217 code such as GBP", p.BaseCurrency))
	}
	return errors.Join(errs...)
}

// JSON encodes the policy for storage and run snapshots.
func (p Policy) JSON() []byte {
	b, _ := json.Marshal(p)
	return b
}
