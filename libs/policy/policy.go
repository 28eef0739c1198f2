// Package policy is a tenant's sync policy and mappings: what to
// sync and how Magento values map onto the tenant's Sage reference data. It is
// stored as JSON in the policies table, validated before it is stored (shape
// with Validate, Sage ids with CheckReferences against the reference cache),
// and snapshotted onto each run so a later edit never changes how a past run
// was made.
package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// EU goods/services types (Sage's eu_goods_services_type_id enum).
const (
	Goods    = "GOODS"
	Services = "SERVICES"
)

// Name sources of customer_name_priority.
const (
	NameCompany  = "company"
	NameFullName = "full_name"
	NameEmail    = "email"
)

// Policy is one tenant's policy. The zero value is not valid: use Default or Parse.
//
// The fields whose default is not empty (tax_rate_map, customer_name_priority,
// product_type_eu_map) are never omitted from JSON: a snapshot of a policy that
// emptied one must not take the default back when it is parsed.
type Policy struct {
	// Sync behaviour. A document outside these filters is finished skipped with
	// the matching reason (unpaid_invoice_filtered, zero_value_invoice,
	// outside_sync_since, website_filtered, store_filtered).
	SyncUnpaidInvoices    bool       `json:"sync_unpaid_invoices"`
	SyncZeroValueInvoices bool       `json:"sync_zero_value_invoices"`
	SyncSince             *time.Time `json:"sync_since,omitempty"`
	WebsiteFilter         []int64    `json:"website_filter,omitempty"`
	StoreFilter           []int64    `json:"store_filter,omitempty"`
	SyncProducts          bool       `json:"sync_products"`

	// Tax: applied percentage ("20.00") → Sage tax rate id, with a default for
	// unmapped percentages, and the business's zero rate (GB_ZERO on UK
	// businesses) for untaxed lines and shipping (Sage recomputes shipping tax
	// from the rate sent: quirk 32) and for customers outside the home country
	// (a UK business must zero-rate them: quirk 29). Quirk numbers are the
	// catalogue in services/mapper/quirks.
	TaxRateMap       map[string]string `json:"tax_rate_map"`
	DefaultTaxRateID string            `json:"default_tax_rate_id"`
	ZeroTaxRateID    string            `json:"zero_tax_rate_id"`

	// Sales-visible ledger accounts. DefaultLedgerAccountID takes every line that
	// has no more specific account; the others fall back to it when empty.
	DefaultLedgerAccountID string `json:"default_ledger_account_id"`
	// CarriageLedgerAccountID takes credit-note shipping-refund lines.
	CarriageLedgerAccountID string `json:"carriage_ledger_account_id,omitempty"`
	// GiftCardLedgerAccountID takes gift-card redemptions (a negative line).
	GiftCardLedgerAccountID string `json:"gift_card_ledger_account_id,omitempty"`
	// StoreCreditLedgerAccountID takes store-credit (customer balance) use.
	StoreCreditLedgerAccountID string `json:"store_credit_ledger_account_id,omitempty"`
	// AdjustmentsLedgerAccountID takes credit-memo adjustment refunds and fees.
	AdjustmentsLedgerAccountID string `json:"adjustments_ledger_account_id,omitempty"`
	// RoundingLedgerAccountID takes the rounding residue line (see
	// RoundingTolerance and the mapper's reconciliation rule).
	RoundingLedgerAccountID string `json:"rounding_ledger_account_id,omitempty"`
	// RoundingTolerance is the largest residue between Magento's grand_total and
	// the sum of the Sage lines that is booked as a rounding line; a larger one
	// fails the run (totals_mismatch). Default 0.05.
	RoundingTolerance *money.Amount `json:"rounding_tolerance,omitempty"`
	// UnitemisedCredit books an invoice whose grand_total is below its lines,
	// shipping and tax by an amount the canonical invoice does not itemise (a
	// gift card or store credit applied by an extension): nil fails such an
	// invoice (totals_mismatch).
	UnitemisedCredit *UnitemisedCredit `json:"unitemised_credit,omitempty"`
	// PurchaseLedgerAccountID is the purchase account Sage requires on products
	// (sync_products); empty uses the business's default.
	PurchaseLedgerAccountID string `json:"purchase_ledger_account_id,omitempty"`

	// Payments: Magento method code → Sage bank account id. A method mapped to
	// "" is left unpaid on purpose; an unlisted method uses
	// DefaultBankAccountID; with neither the payment is skipped
	// (payment_method_not_mapped) and the invoice stays unpaid in Sage.
	PaymentMethodMap     map[string]string `json:"payment_method_map,omitempty"`
	DefaultBankAccountID string            `json:"default_bank_account_id,omitempty"`
	// SagePaymentMethodMap maps a Magento method code to Sage's
	// payment_method_id (CREDIT_DEBIT, BANK_TRANSFER, …), with a default; both
	// optional.
	SagePaymentMethodMap       map[string]string `json:"sage_payment_method_map,omitempty"`
	DefaultSagePaymentMethodID string            `json:"default_sage_payment_method_id,omitempty"`

	// InvoiceNumberPrefix is put in front of Magento's increment id in the Sage
	// reference, never twice.
	InvoiceNumberPrefix string `json:"invoice_number_prefix,omitempty"`
	// CustomerNamePriority orders the sources of a contact's name: company,
	// full_name, email.
	CustomerNamePriority []string `json:"customer_name_priority"`
	// HomeCountry is the business's country (ISO-2); other billing countries are
	// cross-border: zero-rated, with one EU goods/services type on every line
	// (quirks 29 and 30).
	HomeCountry string `json:"home_country"`
	// BaseCurrency is the Sage business's base currency (ISO 4217); contacts
	// trading in another currency get a one-letter currency suffix on their
	// reference (quirk 23).
	BaseCurrency string `json:"base_currency"`

	// B2C consolidation of small guest orders onto one contact per currency.
	B2C B2CConsolidation `json:"b2c_consolidation"`

	// EUGoodsServicesDefault is the eu_goods_services_type_id of cross-border
	// lines whose product type is not in ProductTypeEUMap, and of every line of
	// an invoice that mixes both, since Sage wants the same type on every line
	// (quirk 30). GOODS or SERVICES; default GOODS.
	EUGoodsServicesDefault string `json:"eu_goods_services_default"`
	// ProductTypeEUMap maps a Magento product type (simple, virtual,
	// downloadable, …) to GOODS or SERVICES.
	ProductTypeEUMap map[string]string `json:"product_type_eu_map"`
}

// B2CConsolidation books small guest orders on one fallback contact per
// currency instead of one contact per guest e-mail. Registered customers, B2B
// orders (a company on the order) and repeat guests (who already have their
// own Sage contact) stay individual; credit notes follow their invoice's
// contact.
type B2CConsolidation struct {
	Enabled bool `json:"enabled"`
	// Threshold: only orders whose grand_total (document currency) is at most
	// this are consolidated; nil consolidates every qualifying guest order.
	Threshold *money.Amount `json:"threshold,omitempty"`
	// ContactName is the fallback contact's name (default "Online customers");
	// the currency is appended for non-base currencies.
	ContactName string `json:"contact_name,omitempty"`
}

// UnitemisedCredit is how an unitemised shortfall is booked: the invoice at
// its full value (lines, shipping and tax), and the shortfall as a customer
// receipt from BankAccountID, a clearing account standing for the gift-card
// or store-credit liability, allocated to the invoice. The customer's own
// payment then settles what is left, which is what the customer paid.
type UnitemisedCredit struct {
	// BankAccountID is the Sage bank account the shortfall is received from.
	BankAccountID string `json:"bank_account_id"`
	// MaxShare bounds the shortfall booked this way, as a share of the
	// invoice's full value (0.01 to 1.00); a larger one still fails the run,
	// since it more likely means a wrong total than a voucher.
	MaxShare money.Amount `json:"max_share"`
}

// Covers reports whether u books a shortfall of full − grand on an invoice
// whose full value is full: a positive shortfall within MaxShare of full.
func (u *UnitemisedCredit) Covers(shortfall, full money.Amount) bool {
	if u == nil || shortfall.Sign() <= 0 || full.Sign() <= 0 {
		return false
	}
	return shortfall.Cmp(full.Mul(u.MaxShare)) <= 0
}

// DefaultRoundingTolerance is the rounding residue booked when the policy sets none.
var DefaultRoundingTolerance = money.MustParse("0.05")

// Default is the policy of a new tenant before its Sage reference data is known.
func Default() Policy {
	return Policy{
		SyncUnpaidInvoices:     true,
		ZeroTaxRateID:          "GB_ZERO",
		DefaultTaxRateID:       "GB_STANDARD",
		TaxRateMap:             map[string]string{"20.00": "GB_STANDARD", "5.00": "GB_LOWER", "0.00": "GB_ZERO"},
		CustomerNamePriority:   []string{NameCompany, NameFullName, NameEmail},
		HomeCountry:            "GB",
		BaseCurrency:           "GBP",
		EUGoodsServicesDefault: Goods,
		ProductTypeEUMap: map[string]string{
			"simple": Goods, "configurable": Goods, "bundle": Goods, "grouped": Goods,
			"virtual": Services, "downloadable": Services,
		},
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
		// A second document or stray text after the object would otherwise
		// be ignored silently.
		if _, err := dec.Token(); err != io.EOF {
			return Policy{}, errors.New("policy: unexpected text after the JSON object; send exactly one object")
		}
	}
	return p, p.Validate()
}

var pctKey = regexp.MustCompile(`^[0-9]{1,3}\.[0-9]{2}$`)

// Validate checks the policy's shape. Sage ids are checked against the
// reference cache by CheckReferences; this catches what can be known without
// Sage. Every error names the field and the fix.
func (p Policy) Validate() error {
	var errs []error
	for _, pct := range sortedKeys(p.TaxRateMap) {
		if !pctKey.MatchString(pct) {
			errs = append(errs, fmt.Errorf("tax_rate_map key %q: use a percentage with two decimals, e.g. \"20.00\"", pct))
		}
		if p.TaxRateMap[pct] == "" {
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
		if src != NameCompany && src != NameFullName && src != NameEmail {
			errs = append(errs, fmt.Errorf("customer_name_priority: %q is not one of company, full_name, email", src))
		}
	}
	if len(p.HomeCountry) != 2 {
		errs = append(errs, fmt.Errorf("home_country %q: use an ISO-2 country code such as GB", p.HomeCountry))
	}
	if len(p.BaseCurrency) != 3 || strings.ToUpper(p.BaseCurrency) != p.BaseCurrency {
		errs = append(errs, fmt.Errorf("base_currency %q: use an upper-case ISO 4217 code such as GBP", p.BaseCurrency))
	}
	for method, bank := range p.PaymentMethodMap {
		if strings.TrimSpace(method) == "" {
			errs = append(errs, fmt.Errorf("payment_method_map: a key is empty; use Magento's method code, e.g. checkmo (value %q)", bank))
		}
	}
	// Amounts have at most two decimals: the snapshot (JSON) writes them
	// with two, and must hold the very amount a run was mapped with.
	if t := p.RoundingTolerance; t != nil && (t.Sign() < 0 || t.Cmp(money.MustParse("1")) > 0 || !t.Equal(t.Cents())) {
		errs = append(errs, fmt.Errorf("rounding_tolerance %s: use an amount from 0.00 to 1.00 with at most two decimals (default 0.05)", t.Exact()))
	}
	if u := p.UnitemisedCredit; u != nil {
		if u.BankAccountID == "" {
			errs = append(errs, errors.New("unitemised_credit.bank_account_id: set the Sage bank account that clears gift cards and store credit, or leave unitemised_credit out"))
		}
		if u.MaxShare.Cmp(money.MustParse("0.01")) < 0 || u.MaxShare.Cmp(money.MustParse("1")) > 0 || !u.MaxShare.Equal(u.MaxShare.Cents()) {
			errs = append(errs, fmt.Errorf("unitemised_credit.max_share %s: use a share of the invoice from 0.01 to 1.00 with at most two decimals, e.g. 0.50", u.MaxShare.Exact()))
		}
	}
	if t := p.B2C.Threshold; t != nil && (t.Sign() < 0 || !t.Equal(t.Cents())) {
		errs = append(errs, fmt.Errorf("b2c_consolidation.threshold %s: use a positive amount with at most two decimals, or leave it out to consolidate every guest order", t.Exact()))
	}
	if len(p.B2C.ContactName) > 100 {
		errs = append(errs, errors.New("b2c_consolidation.contact_name: at most 100 characters"))
	}
	if p.EUGoodsServicesDefault != Goods && p.EUGoodsServicesDefault != Services {
		errs = append(errs, fmt.Errorf("eu_goods_services_default %q: use GOODS or SERVICES", p.EUGoodsServicesDefault))
	}
	for _, typ := range sortedKeys(p.ProductTypeEUMap) {
		if v := p.ProductTypeEUMap[typ]; v != Goods && v != Services {
			errs = append(errs, fmt.Errorf("product_type_eu_map[%q] %q: use GOODS or SERVICES", typ, v))
		}
	}
	return errors.Join(errs...)
}

// JSON encodes the policy for storage and run snapshots.
func (p Policy) JSON() []byte {
	b, _ := json.Marshal(p)
	return b
}

// Tolerance is the rounding tolerance in force.
func (p Policy) Tolerance() money.Amount {
	if p.RoundingTolerance != nil {
		return *p.RoundingTolerance
	}
	return DefaultRoundingTolerance
}

// Account returns id, or the default ledger account when id is empty.
func (p Policy) Account(id string) string {
	if id != "" {
		return id
	}
	return p.DefaultLedgerAccountID
}

// BankAccount resolves a Magento payment method to a Sage bank account. ok is
// false when the method is to be left unpaid (mapped to "", or unlisted
// without a default).
func (p Policy) BankAccount(method string) (id string, ok bool) {
	if id, listed := p.PaymentMethodMap[method]; listed {
		return id, id != ""
	}
	return p.DefaultBankAccountID, p.DefaultBankAccountID != ""
}

// SagePaymentMethod is the Sage payment_method_id for a Magento method ("" = none).
func (p Policy) SagePaymentMethod(method string) string {
	if id, ok := p.SagePaymentMethodMap[method]; ok {
		return id
	}
	return p.DefaultSagePaymentMethodID
}

// EUType is the eu_goods_services_type_id for a Magento product type.
func (p Policy) EUType(productType string) string {
	if t, ok := p.ProductTypeEUMap[productType]; ok {
		return t
	}
	return p.EUGoodsServicesDefault
}

// WebsiteAllowed reports whether the website filter lets id through.
func (p Policy) WebsiteAllowed(id int64) bool {
	return len(p.WebsiteFilter) == 0 || slices.Contains(p.WebsiteFilter, id)
}

// StoreAllowed reports whether the store filter lets id through.
func (p Policy) StoreAllowed(id int64) bool {
	return len(p.StoreFilter) == 0 || slices.Contains(p.StoreFilter, id)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
