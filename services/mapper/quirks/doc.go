// Package quirks holds the mapper's Sage quirk rules, one file per entry of the
// quirk catalogue (DESIGN.md §3). Each rule is a small pure function that shapes
// one part of a Sage payload; its Name is what a SageWrite lists in
// applied_quirks, so logs and the dashboard show why a field looks the way it
// does.
//
// A rule never decides whether a run succeeds: it only turns Magento's values
// into values Sage accepts and books correctly.
package quirks

// The rule names recorded in SageWrite.applied_quirks, in catalogue order.
const (
	NameLineTax          = "s7_line_tax"
	NameAddresses        = "s17_addresses"
	NameDescription      = "s22_description"
	NameContactReference = "s23_contact_reference"
	NameExchangeRate     = "s27_exchange_rate"
	NameContactCurrency  = "s28_contact_currency"
	NameZeroRatedOutside = "s29_zero_rated_outside_uk"
	NameEUGoodsServices  = "s30_eu_goods_services"
	NameContactVariant   = "s31_contact_per_currency"
	NameShippingZeroRate = "s32_shipping_zero_rate"
)

// Order lists every rule name in catalogue order, so applied_quirks is stable.
var Order = []string{
	NameLineTax, NameAddresses, NameDescription, NameContactReference,
	NameExchangeRate, NameContactCurrency, NameZeroRatedOutside, NameEUGoodsServices,
	NameContactVariant, NameShippingZeroRate, NoteMixedEUCoerced,
}
