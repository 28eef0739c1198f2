package sagesim

import (
	"cmp"

	"github.com/ledgersync/ledger/libs/money"
)

// Service is a service item (reference data for invoice lines).
type Service struct {
	CatalogItem
	SalesRates []ServiceRate `json:"sales_rates"`
}

// ServiceRate is one of a service's selling rates.
type ServiceRate struct {
	ID              string       `json:"id"`
	DisplayedAs     string       `json:"displayed_as"`
	RateName        string       `json:"rate_name"`
	Rate            money.Amount `json:"rate"`
	RateIncludesTax bool         `json:"rate_includes_tax"`
	ServiceRateType Base         `json:"service_rate_type"`
}

type serviceInput struct {
	catalogInput
	SalesRates *[]struct {
		RateName          *string       `json:"rate_name"`
		Rate              *money.Amount `json:"rate"`
		RateIncludesTax   bool          `json:"rate_includes_tax"`
		ServiceRateTypeID *string       `json:"service_rate_type_id"`
	} `json:"sales_rates"`
}

// Services returns a business's services in creation order. An unknown
// business gives nil.
func (s *Server) Services(businessID string) []Service {
	return snapshot(s, businessID, serviceKind.kind)
}

// serviceKind: a service has sales rates; its purchase ledger account is
// optional.
var serviceKind = &catalogKind[*Service, *serviceInput]{
	kind: &kind[*Service]{root: "service", resource: "services",
		store: func(b *business) *store[*Service] { return &b.services }, match: catalogMatch[*Service]},
	newInput: func() *serviceInput { return new(serviceInput) },
	check: func(in *serviceInput) []APIError {
		var errs problems
		for _, rt := range valueOr(in.SalesRates, nil) {
			errs.when(rt.Rate == nil, required("sales_rates.rate"))
		}
		return errs
	},
	build: func(s *Server, item CatalogItem, in *serviceInput) *Service {
		sv := &Service{CatalogItem: item}
		for _, rt := range valueOr(in.SalesRates, nil) {
			name, typ := cmp.Or(str(rt.RateName), "Rate"), cmp.Or(str(rt.ServiceRateTypeID), "RATE") // [I]
			sv.SalesRates = append(sv.SalesRates, ServiceRate{
				ID: s.newID(), DisplayedAs: name, RateName: name, Rate: *rt.Rate, RateIncludesTax: rt.RateIncludesTax,
				ServiceRateType: Base{ID: typ, DisplayedAs: name, Path: "/service_rate_types/" + typ},
			})
		}
		return sv
	},
}
