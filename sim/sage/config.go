package sagesim

import "time"

// DefaultClientID and DefaultClientSecret identify the OAuth client that every
// simulator registers unless [Config].NoDefaultClient is set.
const (
	DefaultClientID     = "ledger-dev"
	DefaultClientSecret = "ledger-dev-secret"
)

// Config configures a [Server]. The zero value is usable: one GB business, the
// default client, every quirk on, strict request schemas, no faults,
// wall-clock time, seed 0.
type Config struct {
	// Clients are registered OAuth clients in addition to the default one.
	Clients []Client
	// NoDefaultClient leaves the default ledger-dev client unregistered.
	NoDefaultClient bool
	// Businesses are the businesses each simulated Sage user owns. Empty means one
	// business named "Ledger Demo Ltd". The one with Lead set (else the first) is
	// the lead business.
	Businesses []BusinessConfig
	// Quirks switches Sage's catalogued quirks; nil means [DefaultQuirks] (all on).
	Quirks *Quirks
	// Faults is the initial fault injection; change it later with SetFaults.
	Faults Faults
	// LaxSchema turns strict mode off: POST and PUT bodies are no longer
	// checked against Sage's published request schema (unknown fields, JSON
	// types, required fields; schema.go). Strict mode is on by default, so a
	// client that drifts from Sage's schema fails its tests; set this only in
	// a test that needs laxness, and say why. SetStrictSchema switches it later.
	LaxSchema bool
	// Seed makes generated ids and fault draws reproducible.
	Seed uint64
	// Now is the base clock; nil means time.Now. The simulated time is Now()
	// plus the offset accumulated by Advance.
	Now func() time.Time
}

// Client is a registered OAuth client (an app in Sage's developer self-service).
type Client struct {
	ID, Secret string // client_id and client_secret
	// RedirectURIs are the allowed callback URLs, compared exactly (Sage compares
	// case-sensitively). Empty allows any redirect URI.
	RedirectURIs []string
}

// BusinessConfig describes one business of a simulated user.
type BusinessConfig struct {
	// ID is the business id; empty generates a 32-hex id. Only the first user
	// (the default one) gets these ids; later users get fresh ids.
	ID string
	// Name is the business name; empty means "Ledger Demo Ltd" (plus a number
	// for the second and later businesses).
	Name string
	// Lead marks the user's lead business.
	Lead bool
	// Country is the country of registration (ISO 3166 alpha-2); empty means GB.
	// ZeroRatedOutsideUK and EUGoodsServicesTypeRequired apply to GB businesses
	// only.
	Country string
}

// Quirks switches Sage behaviours that surprise a client. A true field makes
// the simulator behave like Sage; false gives the naive behaviour a client might
// expect. Each rule, and what switching it off does, is described in its
// quirk_*.go file; README.md shows the exact response a naive client gets.
type Quirks struct {
	// CurrencyTaxAmountRequired: every sales document line needs currency_tax_amount.
	CurrencyTaxAmountRequired bool `json:"currency_tax_amount_required"`
	// DeliveryAddressMirrorsBilling: a missing delivery_address copies main_address.
	DeliveryAddressMirrorsBilling bool `json:"delivery_address_mirrors_billing"`
	// UmbrellaLineError: any line failure adds line_items.description first.
	UmbrellaLineError bool `json:"umbrella_line_error"`
	// HTMLEntitiesRejected: a line description with an HTML entity fails.
	HTMLEntitiesRejected bool `json:"html_entities_rejected"`
	// ShippingTaxRecomputed: shipping tax is computed; a sent amount is ignored.
	ShippingTaxRecomputed bool `json:"shipping_tax_recomputed"`
	// SoftDeleteReservesReference: a deleted contact keeps its reference taken.
	SoftDeleteReservesReference bool `json:"soft_delete_reserves_reference"`
	// ContactReferenceMax10: a contact reference is at most 10 characters.
	ContactReferenceMax10 bool `json:"contact_reference_max_10"`
	// LineBaseCurrencyRejected: line base_currency_* fields fail.
	LineBaseCurrencyRejected bool `json:"line_base_currency_rejected"`
	// DefaultCurrencyIgnored: a contact's default_currency_id is ignored.
	DefaultCurrencyIgnored bool `json:"default_currency_ignored"`
	// ZeroRatedOutsideUK: documents for customers abroad must be zero rated.
	ZeroRatedOutsideUK bool `json:"zero_rated_outside_uk"`
	// EUGoodsServicesTypeRequired: cross-border lines need one eu_goods_services_type_id.
	EUGoodsServicesTypeRequired bool `json:"eu_goods_services_type_required"`
	// ContactCurrencyLocked: a document is in its contact's currency, which is
	// fixed once the contact has transactions.
	ContactCurrencyLocked bool `json:"contact_currency_locked"`
}

// DefaultQuirks returns every quirk switched on, as Sage behaves.
func DefaultQuirks() Quirks {
	return Quirks{true, true, true, true, true, true, true, true, true, true, true, true}
}
