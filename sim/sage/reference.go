package sagesim

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// Base is Sage's reference to another record: id, displayed_as and $path.
type Base struct {
	ID          string `json:"id"`
	DisplayedAs string `json:"displayed_as"`
	Path        string `json:"$path,omitempty"`
}

func (b Base) ref() Base { return b }

// link is the reference to resource/id shown as name; named looks the name
// up, falling back to the id; links builds a list from id, name pairs.
func link(resource, id, name string) Base {
	return Base{ID: id, DisplayedAs: name, Path: "/" + resource + "/" + id}
}

func named(resource string, names map[string]string, id string) Base {
	return link(resource, id, cmp.Or(names[id], id))
}

func links(resource string, pairs ...string) []Base {
	out := make([]Base, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, link(resource, pairs[i], pairs[i+1]))
	}
	return out
}

// Sage's UK payment methods and currencies (the first is the base currency).
var (
	paymentMethods = links("payment_methods", "BANK_TRANSFER", "Bank Transfer", "CASH", "Cash", "CHECK", "Cheque",
		"CREDIT_DEBIT", "Credit/Debit Card", "ALTERNATIVE_PAYMENT", "Alternative Payment Method")
	currencies = links("currencies", "GBP", "Pound Sterling (GBP)", "EUR", "Euro (EUR)", "USD", "US Dollar (USD)",
		"AUD", "Australian Dollar (AUD)", "CAD", "Canadian Dollar (CAD)", "CHF", "Swiss Franc (CHF)", "SEK", "Swedish Krona (SEK)")
	countryNames = map[string]string{
		"GB": "United Kingdom (GB)", "IE": "Ireland (IE)", "FR": "France (FR)", "DE": "Germany (DE)",
		"ES": "Spain (ES)", "NL": "Netherlands (NL)", "US": "United States (US)", "CA": "Canada (CA)",
	}
	transactionTypes = map[string]string{"SALES_INVOICE": "Sales Invoice", "SALES_CREDIT_NOTE": "Sales Credit Note",
		"CUSTOMER_RECEIPT": "Customer Receipt", "CUSTOMER_REFUND": "Customer Refund", "CUSTOMER_ALLOCATION": "Customer Allocation"}
	statusNames      = map[string]string{"DRAFT": "Draft", "UNPAID": "Unpaid", "PART_PAID": "Part Paid", "PAID": "Paid", "VOID": "Void"}
	addressTypeNames = map[string]string{"DELIVERY": "Delivery", "ACCOUNTS": "Accounts", "SALES": "Sales", "PURCHASING": "Purchasing"}
)

// TaxRate is a Sage tax rate; the UK system ids are fixed strings such as
// GB_STANDARD.
type TaxRate struct {
	Base
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

// taxRates are the UK system rates, the same in every business; the zero,
// exempt and no-VAT types are the 0 % ones.
var taxRates = func() (out []TaxRate) {
	for _, r := range [][3]string{{"GB_STANDARD", "Standard", "20"}, {"GB_LOWER", "Lower", "5"}, {"GB_ZERO", "Zero", "0"},
		{"GB_EXEMPT", "Exempt", "0"}, {"GB_NO_TAX", "No VAT", "0"}} {
		p := money.MustParse(r[2])
		shown := r[1] + " " + p.String() + "%"
		if r[0] == "GB_NO_TAX" {
			shown = r[1]
		}
		out = append(out, TaxRate{Base: link("tax_rates", r[0], shown), Name: r[1], Percentage: p,
			Percentages: []TaxRatePercentage{{Percentage: p, FromDate: "2011-01-04"}}, IsVisible: true, ZeroType: p.IsZero()})
	}
	return out
}()

// LedgerAccount is an account of a business's chart of accounts.
type LedgerAccount struct {
	Base
	CreatedAt              time.Time `json:"created_at"`
	UpdatedAt              time.Time `json:"updated_at"`
	LedgerAccountType      Base      `json:"ledger_account_type"`
	IncludedInChart        bool      `json:"included_in_chart"`
	Name                   string    `json:"name"`
	DisplayName            string    `json:"display_name"`
	NominalCode            int       `json:"nominal_code"`
	TaxRate                *Base     `json:"tax_rate"`
	FixedTaxRate           bool      `json:"fixed_tax_rate"`
	VisibleInBanking       bool      `json:"visible_in_banking"`
	VisibleInExpenses      bool      `json:"visible_in_expenses"`
	VisibleInJournals      bool      `json:"visible_in_journals"`
	VisibleInOtherPayments bool      `json:"visible_in_other_payments"`
	VisibleInOtherReceipts bool      `json:"visible_in_other_receipts"`
	VisibleInReporting     bool      `json:"visible_in_reporting"`
	VisibleInSales         bool      `json:"visible_in_sales"`
	IsControlAccount       bool      `json:"is_control_account"`
	DisplayFormatted       string    `json:"display_formatted"`
}

// seedLedgerAccounts builds a small UK chart: the sales accounts Ledger maps
// lines and shipping to, two bank accounts, control accounts and expenses.
func (s *Server) seedLedgerAccounts(now time.Time) []LedgerAccount {
	std, zero := &taxRates[0], &taxRates[2]
	types := map[string]string{"CURRENT_ASSETS": "Current Assets", "BANK": "Bank", "CURRENT_LIABILITY": "Current Liabilities",
		"SALES": "Sales", "OTHER_INCOME": "Other Income", "DIRECT_EXPENSES": "Direct Expenses", "OVERHEADS": "Overheads"}
	var out []LedgerAccount
	for _, sp := range []struct {
		code      int
		name, typ string
		tax       *TaxRate
	}{
		{1100, "Debtors Control Account", "CURRENT_ASSETS", nil}, {1200, "Current", "BANK", nil},
		{1210, "Card Receipts", "BANK", nil}, {2200, "Sales Tax Control Account", "CURRENT_LIABILITY", nil},
		{4000, "Sales Type A", "SALES", std}, {4010, "Sales Type B", "SALES", std}, {4020, "Sales Type C", "SALES", zero},
		{4900, "Miscellaneous Income", "OTHER_INCOME", std}, {4905, "Distribution and Carriage", "SALES", std},
		{5000, "Cost of sales - goods", "DIRECT_EXPENSES", std}, {7906, "Exchange rate variance", "OVERHEADS", nil},
	} {
		// Visibility follows the account type.
		sales, expenses := sp.typ == "SALES" || sp.typ == "OTHER_INCOME", sp.typ == "DIRECT_EXPENSES" || sp.typ == "OVERHEADS"
		out = append(out, LedgerAccount{
			Base: link("ledger_accounts", s.newID(), fmt.Sprintf("%s (%d)", sp.name, sp.code)), CreatedAt: now, UpdatedAt: now,
			LedgerAccountType: named("ledger_account_types", types, sp.typ), IncludedInChart: true,
			Name: sp.name, DisplayName: sp.name, NominalCode: sp.code, TaxRate: refOf(sp.tax),
			VisibleInBanking: sp.typ == "BANK", VisibleInExpenses: expenses, VisibleInJournals: true,
			VisibleInOtherPayments: expenses, VisibleInOtherReceipts: sales, VisibleInReporting: true,
			VisibleInSales: sales, IsControlAccount: strings.HasPrefix(sp.typ, "CURRENT_"),
			DisplayFormatted: fmt.Sprintf("%d - %s", sp.code, sp.name),
		})
	}
	return out
}

func (b *business) ledgerAccountByCode(code int) LedgerAccount {
	for _, l := range b.ledgerAccounts {
		if l.NominalCode == code {
			return l
		}
	}
	return LedgerAccount{}
}

// BankAccount is a business's bank account.
type BankAccount struct {
	Record
	BankAccountDetails   BankAccountDetails `json:"bank_account_details"`
	LedgerAccount        Base               `json:"ledger_account"`
	BankAccountType      Base               `json:"bank_account_type"`
	Balance              money.Amount       `json:"balance"`
	NominalCode          int                `json:"nominal_code"`
	Editable             bool               `json:"editable"`
	Deletable            bool               `json:"deletable"`
	DefaultPaymentMethod *Base              `json:"default_payment_method"`
	IsActive             bool               `json:"is_active"`
	Currency             Base               `json:"currency"`
}

// BankAccountDetails are the account's bank identifiers.
type BankAccountDetails struct {
	AccountName   string `json:"account_name"`
	AccountNumber string `json:"account_number"`
	SortCode      string `json:"sort_code"`
}

// seedBankAccounts creates one bank account per BANK ledger account: a current
// account taking bank transfers and a card receipts account.
func (s *Server) seedBankAccounts(now time.Time, ledger []LedgerAccount) (out []BankAccount) {
	for _, l := range ledger {
		if l.LedgerAccountType.ID != "BANK" {
			continue
		}
		rec := s.newRecord("bank_accounts", now)
		rec.DisplayedAs = l.DisplayedAs
		method, typ := paymentMethods[0], link("bank_account_types", "CHECKING", "Current")
		if l.NominalCode == 1210 {
			method, typ = paymentMethods[3], link("bank_account_types", "OTHER", "Other")
		}
		out = append(out, BankAccount{
			Record:             rec,
			BankAccountDetails: BankAccountDetails{AccountName: l.Name, AccountNumber: "12345678", SortCode: "40-00-00"},
			LedgerAccount:      l.ref(), BankAccountType: typ, NominalCode: l.NominalCode,
			Editable: true, Deletable: true, DefaultPaymentMethod: &method, IsActive: true, Currency: currencies[0],
		})
	}
	return out
}

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

// referenceRoutes registers the read-only reference data and settings.
func (s *Server) referenceRoutes(mux *http.ServeMux) {
	reference(s, mux, "tax_rates", func(*business) []TaxRate { return taxRates }, func(_ url.Values, lp listParams) func(TaxRate) bool {
		return func(t TaxRate) bool { return lp.search == "" || containsFold(t.Name, lp.search) }
	})
	// Ledger accounts filter on visible_in (sales, banking, expenses, journals,
	// other_payments, other_receipts, reporting), ledger_account_type_id,
	// search (name or nominal code) and updated_or_created_since.
	reference(s, mux, "ledger_accounts", func(b *business) []LedgerAccount { return b.ledgerAccounts },
		func(q url.Values, lp listParams) func(LedgerAccount) bool {
			visible, typ := q.Get("visible_in"), q.Get("ledger_account_type_id")
			return func(l LedgerAccount) bool {
				in := map[string]bool{"sales": l.VisibleInSales, "banking": l.VisibleInBanking, "expenses": l.VisibleInExpenses,
					"journals": l.VisibleInJournals, "other_payments": l.VisibleInOtherPayments,
					"other_receipts": l.VisibleInOtherReceipts, "reporting": l.VisibleInReporting}
				return (visible == "" || in[visible]) && (typ == "" || l.LedgerAccountType.ID == typ) &&
					(lp.search == "" || containsFold(l.Name, lp.search) || strings.Contains(strconv.Itoa(l.NominalCode), lp.search)) &&
					lp.changedSince(l.CreatedAt, l.UpdatedAt)
			}
		})
	reference(s, mux, "bank_accounts", func(b *business) []BankAccount { return b.bankAccounts }, func(_ url.Values, lp listParams) func(BankAccount) bool {
		return func(a BankAccount) bool { return lp.search == "" || containsFold(a.DisplayedAs, lp.search) }
	})
	reference(s, mux, "payment_methods", func(*business) []Base { return paymentMethods }, nil)
	reference(s, mux, "currencies", func(*business) []Base { return currencies }, nil)
	mux.HandleFunc("GET /v3.1/financial_settings", s.api(func(*http.Request, *apiCall) *response {
		return jsonResponse(http.StatusOK, FinancialSettings{
			Path: "/financial_settings", YearEndDate: "2026-12-31", AccountingType: "accrual",
			AccountsStartDate: "2025-01-01", BaseCurrency: currencies[0], MultiCurrencyEnabled: true,
			TaxNumber: "GB123456789", SalesTaxCalculation: "invoice",
		})
	}))
	mux.HandleFunc("GET /v3.1/business_settings", s.api(func(_ *http.Request, c *apiCall) *response {
		s.mu.RLock()
		defer s.mu.RUnlock()
		b := c.business
		return jsonResponse(http.StatusOK, map[string]any{
			"$path": "/business_settings", "country_of_registration": b.info.CountryOfRegistration,
			"business_type": Base{ID: "LIMITED_COMPANY", DisplayedAs: "Limited Company"},
			"default_ledger_accounts": map[string]Base{
				"sales_ledger_account":                     b.ledgerAccountByCode(4000).ref(),
				"carriage_ledger_account":                  b.ledgerAccountByCode(4905).ref(),
				"customer_receipt_discount_ledger_account": b.ledgerAccountByCode(4900).ref(),
				"exchange_rate_gains_ledger_account":       b.ledgerAccountByCode(7906).ref(),
				"exchange_rate_losses_ledger_account":      b.ledgerAccountByCode(7906).ref(),
			},
		})
	}))
}

// reference registers GET /resource[/{id}] over a business's items.
func reference[T interface{ ref() Base }](s *Server, mux *http.ServeMux, resource string, items func(*business) []T,
	match func(q url.Values, lp listParams) func(T) bool) {
	listRoute(s, mux, resource, items, match, func(it T) baseItem { return baseItem{Base: it.ref()} })
	mux.HandleFunc("GET /v3.1/"+resource+"/{id}", s.api(func(r *http.Request, c *apiCall) *response {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if it, ok := byID(items(c.business), r.PathValue("id")); ok {
			return jsonResponse(http.StatusOK, it)
		}
		return notFound()
	}))
}

func transactionType(id string) Base { return named("transaction_types", transactionTypes, id) }

// status is a status of sales documents and payments on account.
func status(id string) Base {
	return named("artefact_statuses", statusNames, id)
}
