package sagesim

import "net/http"

// FinancialSettings is GET /financial_settings.
type FinancialSettings struct {
	Path                 string `json:"$path"`
	YearEndDate          string `json:"year_end_date"`
	AccountingType       string `json:"accounting_type"`
	AccountsStartDate    string `json:"accounts_start_date"`
	BaseCurrency         Base   `json:"base_currency"`
	MultiCurrencyEnabled bool   `json:"multi_currency_enabled"`
	UseLiveExchangeRates bool   `json:"use_live_exchange_rates"`
	TaxNumber            string `json:"tax_number"`
	SalesTaxCalculation  string `json:"sales_tax_calculation"`
	PostponedAccounting  bool   `json:"postponed_accounting"`
	DestinationVAT       bool   `json:"destination_vat"`
}

// BusinessSettings is GET /business_settings.
type BusinessSettings struct {
	Path                  string                `json:"$path"`
	CountryOfRegistration Base                  `json:"country_of_registration"`
	BusinessType          Base                  `json:"business_type"`
	DefaultLedgerAccounts DefaultLedgerAccounts `json:"default_ledger_accounts"`
}

// DefaultLedgerAccounts are the business's default postings.
type DefaultLedgerAccounts struct {
	SalesLedgerAccount                   Base `json:"sales_ledger_account"`
	CarriageLedgerAccount                Base `json:"carriage_ledger_account"`
	CustomerReceiptDiscountLedgerAccount Base `json:"customer_receipt_discount_ledger_account"`
	ExchangeRateGainsLedgerAccount       Base `json:"exchange_rate_gains_ledger_account"`
	ExchangeRateLossesLedgerAccount      Base `json:"exchange_rate_losses_ledger_account"`
}

func (s *Server) getFinancialSettings(r *http.Request, c *apiCall) response {
	return jsonResponse(http.StatusOK, FinancialSettings{
		Path: "/financial_settings", YearEndDate: "2026-12-31", AccountingType: "accrual",
		AccountsStartDate: "2025-01-01", BaseCurrency: currencies[0], MultiCurrencyEnabled: true,
		TaxNumber: "GB123456789", SalesTaxCalculation: "invoice",
	})
}

func (s *Server) getBusinessSettings(r *http.Request, c *apiCall) response {
	s.mu.RLock()
	b := c.business
	settings := BusinessSettings{
		Path:                  "/business_settings",
		CountryOfRegistration: b.info.CountryOfRegistration,
		BusinessType:          Base{ID: "LIMITED_COMPANY", DisplayedAs: "Limited Company"},
		DefaultLedgerAccounts: DefaultLedgerAccounts{
			SalesLedgerAccount:                   b.ledgerAccountByCode(4000).ref(),
			CarriageLedgerAccount:                b.ledgerAccountByCode(4905).ref(),
			CustomerReceiptDiscountLedgerAccount: b.ledgerAccountByCode(4900).ref(),
			ExchangeRateGainsLedgerAccount:       b.ledgerAccountByCode(7906).ref(),
			ExchangeRateLossesLedgerAccount:      b.ledgerAccountByCode(7906).ref(),
		},
	}
	s.mu.RUnlock()
	return jsonResponse(http.StatusOK, settings)
}
