package sagesim

import (
	"net/http"
	"net/url"
)

// paymentMethods is Sage's UK payment method list (a Base list).
var paymentMethods = []Base{
	{ID: "BANK_TRANSFER", DisplayedAs: "Bank Transfer", Path: "/payment_methods/BANK_TRANSFER"},
	{ID: "CASH", DisplayedAs: "Cash", Path: "/payment_methods/CASH"},
	{ID: "CHECK", DisplayedAs: "Cheque", Path: "/payment_methods/CHECK"},
	{ID: "CREDIT_DEBIT", DisplayedAs: "Credit/Debit Card", Path: "/payment_methods/CREDIT_DEBIT"},
	{ID: "ALTERNATIVE_PAYMENT", DisplayedAs: "Alternative Payment Method", Path: "/payment_methods/ALTERNATIVE_PAYMENT"},
}

// currencies is the currency list; the first is the base currency.
var currencies = []Base{
	{ID: "GBP", DisplayedAs: "Pound Sterling (GBP)", Path: "/currencies/GBP"},
	{ID: "EUR", DisplayedAs: "Euro (EUR)", Path: "/currencies/EUR"},
	{ID: "USD", DisplayedAs: "US Dollar (USD)", Path: "/currencies/USD"},
	{ID: "AUD", DisplayedAs: "Australian Dollar (AUD)", Path: "/currencies/AUD"},
	{ID: "CAD", DisplayedAs: "Canadian Dollar (CAD)", Path: "/currencies/CAD"},
	{ID: "CHF", DisplayedAs: "Swiss Franc (CHF)", Path: "/currencies/CHF"},
	{ID: "SEK", DisplayedAs: "Swedish Krona (SEK)", Path: "/currencies/SEK"},
}

func (b Base) ref() Base { return b }

// referenceRoutes registers GET /resource and GET /resource/{id} over
// reference data: items are a business's, match filters a list (nil keeps
// all). Default list items show id, displayed_as and $path.
func referenceRoutes[T interface{ ref() Base }](s *Server, mux *http.ServeMux, resource string, items func(*business) []T,
	match func(q url.Values, lp listParams) func(T) bool) {
	mux.HandleFunc("GET /v3.1/"+resource, s.api(func(r *http.Request, c *apiCall) response {
		lp, bad := parseListParams(r)
		if bad != nil {
			return *bad
		}
		keep := func(T) bool { return true }
		if match != nil {
			keep = match(r.URL.Query(), lp)
		}
		s.mu.RLock()
		defer s.mu.RUnlock()
		var out []T
		for _, it := range items(c.business) {
			if keep(it) {
				out = append(out, it)
			}
		}
		return listOf(r, resource, out, lp, func(it T) baseItem { return baseItem{Base: it.ref()} })
	}, routeOpts{}))
	mux.HandleFunc("GET /v3.1/"+resource+"/{id}", s.api(func(r *http.Request, c *apiCall) response {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if it, ok := byID(items(c.business), r.PathValue("id")); ok {
			return jsonResponse(http.StatusOK, it)
		}
		return notFound()
	}, routeOpts{}))
}
