package sagesim

import (
	"cmp"
	"slices"
	"strings"
)

// Address is a postal address on a contact or a sales document.
type Address struct {
	ID            string `json:"id,omitempty"`
	DisplayedAs   string `json:"displayed_as,omitempty"`
	AddressLine1  string `json:"address_line_1"`
	AddressLine2  string `json:"address_line_2"`
	City          string `json:"city"`
	PostalCode    string `json:"postal_code"`
	Region        string `json:"region"`
	Country       *Base  `json:"country"`
	AddressType   *Base  `json:"address_type,omitempty"`
	Name          string `json:"name,omitempty"`
	IsMainAddress bool   `json:"is_main_address,omitempty"`
}

// addressInput is an address as POST/PUT bodies send it.
type addressInput struct {
	AddressLine1   string `json:"address_line_1"`
	AddressLine2   string `json:"address_line_2"`
	City           string `json:"city"`
	PostalCode     string `json:"postal_code"`
	CountryID      string `json:"country_id"`
	Region         string `json:"region"`
	AddressTypeID  string `json:"address_type_id"`
	Name           string `json:"name"`
	IsMainAddress  *bool  `json:"is_main_address"`
	CountryGroupID string `json:"country_group_id"`
}

var countryNames = map[string]string{
	"GB": "United Kingdom (GB)", "IE": "Ireland (IE)", "FR": "France (FR)", "DE": "Germany (DE)",
	"ES": "Spain (ES)", "NL": "Netherlands (NL)", "US": "United States (US)", "CA": "Canada (CA)",
}

var addressTypeNames = map[string]string{
	"DELIVERY": "Delivery", "ACCOUNTS": "Accounts", "SALES": "Sales", "PURCHASING": "Purchasing",
}

// country is the reference to a country by its ISO code.
func country(id string) *Base {
	return &Base{ID: id, DisplayedAs: cmp.Or(countryNames[id], id), Path: "/countries/" + id}
}

// toAddress converts an input address; defaultType applies when address_type_id
// is empty. id may be empty (sales documents carry no address ids).
func (in *addressInput) toAddress(id, defaultType string, main bool) *Address {
	if in == nil {
		return nil
	}
	a := &Address{
		ID: id, AddressLine1: in.AddressLine1, AddressLine2: in.AddressLine2, City: in.City,
		PostalCode: in.PostalCode, Region: in.Region, Name: in.Name, IsMainAddress: main,
	}
	if in.IsMainAddress != nil {
		a.IsMainAddress = *in.IsMainAddress
	}
	if in.CountryID != "" {
		a.Country = country(in.CountryID)
	}
	typ := cmp.Or(in.AddressTypeID, defaultType)
	if typ != "" {
		a.AddressType = &Base{ID: typ, DisplayedAs: cmp.Or(addressTypeNames[typ], typ), Path: "/address_types/" + typ}
	}
	a.DisplayedAs = joinNonEmpty(a.AddressLine1, a.AddressLine2, a.City, a.Region, a.PostalCode)
	return a
}

// clone copies an address for use on another record (without its id).
func (a *Address) clone() *Address {
	if a == nil {
		return nil
	}
	c := *a
	c.ID = ""
	return &c
}

func joinNonEmpty(parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(p string) bool { return p == "" }), "\n")
}
