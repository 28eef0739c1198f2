package sagesim

import (
	"net/url"

	"github.com/ledgersync/ledger/libs/money"
)

// TaxRate is a Sage tax rate. The UK system ids are fixed strings such as
// GB_STANDARD; percentage is a numeric string.
type TaxRate struct {
	ID             string              `json:"id"`
	DisplayedAs    string              `json:"displayed_as"`
	Path           string              `json:"$path"`
	Name           string              `json:"name"`
	Percentage     money.Amount        `json:"percentage"`
	Percentages    []TaxRatePercentage `json:"percentages"`
	IsVisible      bool                `json:"is_visible"`
	Retailer       bool                `json:"retailer"`
	Editable       bool                `json:"editable"`
	Deletable      bool                `json:"deletable"`
	IsCombinedRate bool                `json:"is_combined_rate"`
	// ZeroType marks rates of a zero, exempt or no_tax type, for which Sage
	// infers a line tax_amount of 0. Sage does not send it.
	ZeroType bool `json:"-"`
}

// TaxRatePercentage is one dated percentage of a tax rate.
type TaxRatePercentage struct {
	Percentage money.Amount `json:"percentage"`
	FromDate   string       `json:"from_date"`
	ToDate     *string      `json:"to_date"`
}

func newTaxRate(id, name, pct string, zeroType bool) TaxRate {
	p := money.MustParse(pct)
	shown := name + " " + p.String() + "%"
	if id == "GB_NO_TAX" {
		shown = name
	}
	return TaxRate{
		ID: id, DisplayedAs: shown, Path: "/tax_rates/" + id, Name: name, Percentage: p,
		Percentages: []TaxRatePercentage{{Percentage: p, FromDate: "2011-01-04"}},
		IsVisible:   true, ZeroType: zeroType,
	}
}

// taxRates are the UK system rates, the same in every business.
var taxRates = []TaxRate{
	newTaxRate("GB_STANDARD", "Standard", "20", false),
	newTaxRate("GB_LOWER", "Lower", "5", false),
	newTaxRate("GB_ZERO", "Zero", "0", true),
	newTaxRate("GB_EXEMPT", "Exempt", "0", true),
	newTaxRate("GB_NO_TAX", "No VAT", "0", true),
}

func (t TaxRate) ref() Base { return Base{ID: t.ID, DisplayedAs: t.DisplayedAs, Path: t.Path} }

// matchTaxRate is the tax rates' list filter: search on the name.
func matchTaxRate(_ url.Values, lp listParams) func(TaxRate) bool {
	return func(t TaxRate) bool { return lp.search == "" || containsFold(t.Name, lp.search) }
}
