package sagesim

import "time"

// DefaultClientID and DefaultClientSecret identify the OAuth client that every
// simulator registers unless [Config].NoDefaultClient is set.
const (
	DefaultClientID     = "ledger-dev"
	DefaultClientSecret = "ledger-dev-secret"
)

// Config configures a [Server]. The zero value is usable: one GB business, the
// default client, every quirk on, no faults, wall-clock time, seed 0.
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
	// Seed makes generated ids and fault draws reproducible.
	Seed uint64
	// Now is the base clock; nil means time.Now. The simulated time is Now()
	// plus the offset accumulated by Advance.
	Now func() time.Time
}

// Client is a registered OAuth client (an app in Sage's developer self-service).
type Client struct {
	// ID is the client_id.
	ID string
	// Secret is the client_secret.
	Secret string
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
// expect. Each rule lives in a quirk_*.go file; README.md shows the exact
// response a naive client gets for each.
type Quirks struct {
	// CurrencyTaxAmountRequired: each sales document line must carry
	// currency_tax_amount, else 422 "This field is required.".
	CurrencyTaxAmountRequired bool `json:"currency_tax_amount_required"`
	// DeliveryAddressMirrorsBilling: a sales document without delivery_address
	// gets a copy of its billing address (main_address).
	DeliveryAddressMirrorsBilling bool `json:"delivery_address_mirrors_billing"`
	// UmbrellaLineError: any line-level validation failure puts
	// line_items.description "This field is required." first in the error array.
	UmbrellaLineError bool `json:"umbrella_line_error"`
	// HTMLEntitiesRejected: a line description containing an HTML entity
	// (&trade;, &amp;, &#8482; …) fails 422.
	HTMLEntitiesRejected bool `json:"html_entities_rejected"`
	// ShippingTaxRecomputed: shipping tax is shipping_net_amount × the rate of
	// shipping_tax_rate_id; a sent shipping_tax_amount is ignored.
	ShippingTaxRecomputed bool `json:"shipping_tax_recomputed"`
	// SoftDeleteReservesReference: deleting a contact only sets deleted_at, its
	// reference stays taken and the contact cannot be updated.
	SoftDeleteReservesReference bool `json:"soft_delete_reserves_reference"`
	// ContactReferenceMax10: a contact reference longer than 10 characters
	// fails 422 on reference (off: up to 255 are accepted). Uniqueness is always
	// enforced.
	ContactReferenceMax10 bool `json:"contact_reference_max_10"`
	// LineBaseCurrencyRejected: base_currency_* fields on sales document lines
	// fail 422; Sage derives them from the header exchange_rate.
	LineBaseCurrencyRejected bool `json:"line_base_currency_rejected"`
	// DefaultCurrencyIgnored: a contact's default_currency_id is ignored; only
	// currency_id sets the currency it trades in.
	DefaultCurrencyIgnored bool `json:"default_currency_ignored"`
	// ZeroRatedOutsideUK: on a GB business, a sales document whose contact's
	// main address is outside GB must use a zero rate on every line and on
	// shipping.
	ZeroRatedOutsideUK bool `json:"zero_rated_outside_uk"`
	// EUGoodsServicesTypeRequired: cross-border lines need
	// eu_goods_services_type_id, the same on every line.
	EUGoodsServicesTypeRequired bool `json:"eu_goods_services_type_required"`
	// ContactCurrencyLocked: a sales document must be in its contact's
	// currency, and a contact with transactions cannot change currency.
	ContactCurrencyLocked bool `json:"contact_currency_locked"`
}

// DefaultQuirks returns every quirk switched on, as Sage behaves.
func DefaultQuirks() Quirks {
	return Quirks{
		CurrencyTaxAmountRequired:     true,
		DeliveryAddressMirrorsBilling: true,
		UmbrellaLineError:             true,
		HTMLEntitiesRejected:          true,
		ShippingTaxRecomputed:         true,
		SoftDeleteReservesReference:   true,
		ContactReferenceMax10:         true,
		LineBaseCurrencyRejected:      true,
		DefaultCurrencyIgnored:        true,
		ZeroRatedOutsideUK:            true,
		EUGoodsServicesTypeRequired:   true,
		ContactCurrencyLocked:         true,
	}
}
