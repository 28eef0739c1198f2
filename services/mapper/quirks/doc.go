// Package quirks holds the mapper's Sage quirk rules, one file per entry of the
// quirk catalogue below (sNN_*.go is entry NN). Each rule is a small pure
// function that shapes one part of a Sage payload; its Name is what a SageWrite
// lists in applied_quirks, so logs and the dashboard show why a field looks the
// way it does.
//
// A rule never decides whether a run succeeds: it only turns Magento's values
// into values Sage accepts and books correctly.
//
// # Quirk catalogue
//
// Comments across the repository cite these numbers ("quirk 32"). Each entry
// says what Sage does, then what Ledger does about it; sim/sage reproduces every
// one, and services/mapper/quirks_sim_test.go has a test per mapper rule.
//
//   - 7: a sales-document line without currency_tax_amount fails with 422 "This
//     field is required", and v3.1 is strict about tax_amount. Every line
//     carries both, zero-rated lines too ([LineTax]).
//   - 17: a document without delivery_address gets a silent copy of the billing
//     address. Both addresses are always sent; a virtual order's delivery is its
//     billing address, sent explicitly ([Addresses]).
//   - 20: many unrelated line failures answer "line_items.description: This
//     field is required." first. Not a mapper rule: libs/sage's
//     APIError.Primary names the most specific $source instead, and the
//     sage-writer logs the whole envelope once.
//   - 22: an HTML entity (&trade;, &amp;, &#8482;) in a line description fails
//     with 422. Entities are decoded to a fixed point, tags and control
//     characters stripped, spaces collapsed, length capped ([Description]).
//   - 23: contact.reference is unique and at most 10 characters. References
//     are deterministic (M + customer id, G + email hash, a currency suffix),
//     and collisions are resolved through entity_xref ([ContactReference]).
//   - 27: line base_currency_* fields are refused on POST; Sage derives them from
//     the header rate. The header carries currency_id and exchange_rate =
//     1 / base_to_order_rate, the lines nothing base_currency_* ([ExchangeRate]).
//   - 28: default_currency_id does not set the currency a contact trades in.
//     The contact's currency_id is set instead ([ContactCurrency]).
//   - 29: a UK business refuses non-zero tax rates for a customer outside the
//     UK ("must be 'Zero Rated' for Customers outside the UK"). A cross-border
//     document zero-rates every line and its shipping, and the tax the shop
//     charged moves to one line, so the total holds ([ZeroRatedOutsideHome]).
//   - 30: cross-border lines need eu_goods_services_type_id, the same on every
//     line. It comes from the policy's product-type map; a mix is coerced to
//     the default and recorded ([EUGoodsServices]).
//   - 31: a contact is locked to one transaction currency. Ledger keeps one Sage
//     contact per (customer, currency) ([ContactVariant]).
//   - 32: Sage recomputes shipping tax as shipping_tax_rate_id ×
//     shipping_net_amount and ignores shipping_tax_amount. Untaxed shipping
//     uses the business's zero rate ([ShippingTaxRate]).
//   - soft delete (unnumbered): a deleted contact keeps its reference reserved
//     and a PUT on it fails. Not a mapper rule: the sage-writer dead-letters the
//     write as contact_reference_reserved with what to do.
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
