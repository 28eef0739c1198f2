package sagesim

import "net/http"

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

func currencyByID(id string) (Base, bool) {
	for _, c := range currencies {
		if c.ID == id {
			return c, true
		}
	}
	return Base{}, false
}

// baseList answers a static Base list.
func baseList(resource string, all []Base) apiHandler {
	return func(r *http.Request, c *apiCall) response {
		lp, bad := parseListParams(r)
		if bad != nil {
			return *bad
		}
		return listOf(r, resource, all, lp, func(b Base) any { return b })
	}
}

func baseGet(all []Base) apiHandler {
	return func(r *http.Request, c *apiCall) response {
		for _, b := range all {
			if b.ID == r.PathValue("id") {
				return jsonResponse(http.StatusOK, b)
			}
		}
		return notFound()
	}
}

func (s *Server) listPaymentMethods(r *http.Request, c *apiCall) response {
	return baseList("payment_methods", paymentMethods)(r, c)
}

func (s *Server) getPaymentMethod(r *http.Request, c *apiCall) response {
	return baseGet(paymentMethods)(r, c)
}

func (s *Server) listCurrencies(r *http.Request, c *apiCall) response {
	return baseList("currencies", currencies)(r, c)
}

func (s *Server) getCurrency(r *http.Request, c *apiCall) response { return baseGet(currencies)(r, c) }
