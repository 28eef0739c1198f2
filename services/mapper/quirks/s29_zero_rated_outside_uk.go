package quirks

import (
	"strings"

	"github.com/ledgersync/ledger/libs/money"
)

// CrossBorder reports whether a document whose customer is billed in
// billingCountry is cross-border for a business in homeCountry (quirks 29
// and 30). An unknown billing country counts as domestic, as Sage does for a
// contact without a country.
func CrossBorder(billingCountry, homeCountry string) bool {
	c := strings.ToUpper(strings.TrimSpace(billingCountry))
	return c != "" && !strings.EqualFold(c, strings.TrimSpace(homeCountry))
}

// ZeroRatedOutsideHome is quirk 29: a UK business rejects any non-zero tax
// rate on a line or on shipping of a sales document for a customer outside the
// UK ("must be 'Zero Rated' for Customers outside the UK"). So on a
// cross-border document every line and the shipping take the business's zero
// rate with no tax. Whatever tax the shop did charge is not lost: it moves,
// unchanged, into one zero-rated line ("Tax charged at checkout"), so the
// document total still equals Magento's grand_total to the penny.
//
// It returns the tax to move (the sum of the line and shipping tax given).
func ZeroRatedOutsideHome(lineTaxes []money.Amount, shippingTax money.Amount) money.Amount {
	sum := shippingTax.Cents()
	for _, t := range lineTaxes {
		sum = sum.Add(t.Cents())
	}
	return sum
}

// TaxMovedDescription is the description of the quirk 29 line that carries the tax a
// shop charged a customer outside the home country.
const TaxMovedDescription = "Tax charged at checkout (customer outside the home country)"
