package sagesim

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// LedgerAccount is an account of a business's chart of accounts.
type LedgerAccount struct {
	ID                     string    `json:"id"`
	DisplayedAs            string    `json:"displayed_as"`
	Path                   string    `json:"$path"`
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

// visibleIn answers the visible_in filter (sales, banking, expenses, journals,
// other_payments, other_receipts, reporting).
func (l LedgerAccount) visibleIn(scope string) bool {
	return map[string]bool{"sales": l.VisibleInSales, "banking": l.VisibleInBanking, "expenses": l.VisibleInExpenses,
		"journals": l.VisibleInJournals, "other_payments": l.VisibleInOtherPayments,
		"other_receipts": l.VisibleInOtherReceipts, "reporting": l.VisibleInReporting}[scope]
}

// seedLedgerAccounts builds a small UK chart: the sales accounts Ledger maps
// lines and shipping to, a bank account, control accounts and an expense.
func (s *Server) seedLedgerAccounts(now time.Time) []LedgerAccount {
	std, _ := byID(taxRates, "GB_STANDARD")
	zero, _ := byID(taxRates, "GB_ZERO")
	type spec struct {
		code                  int
		name, typ, typName    string
		tax                   *Base
		sales, bank, expenses bool
		control               bool
	}
	specs := []spec{
		{1100, "Debtors Control Account", "CURRENT_ASSETS", "Current Assets", nil, false, false, false, true},
		{1200, "Current", "BANK", "Bank", nil, false, true, false, false},
		{1210, "Card Receipts", "BANK", "Bank", nil, false, true, false, false},
		{2200, "Sales Tax Control Account", "CURRENT_LIABILITY", "Current Liabilities", nil, false, false, false, true},
		{4000, "Sales Type A", "SALES", "Sales", new(std.ref()), true, false, false, false},
		{4010, "Sales Type B", "SALES", "Sales", new(std.ref()), true, false, false, false},
		{4020, "Sales Type C", "SALES", "Sales", new(zero.ref()), true, false, false, false},
		{4900, "Miscellaneous Income", "OTHER_INCOME", "Other Income", new(std.ref()), true, false, false, false},
		{4905, "Distribution and Carriage", "SALES", "Sales", new(std.ref()), true, false, false, false},
		{5000, "Cost of sales - goods", "DIRECT_EXPENSES", "Direct Expenses", new(std.ref()), false, false, true, false},
		{7906, "Exchange rate variance", "OVERHEADS", "Overheads", nil, false, false, true, false},
	}
	out := make([]LedgerAccount, 0, len(specs))
	for _, sp := range specs {
		id := s.newID()
		out = append(out, LedgerAccount{
			ID: id, DisplayedAs: fmt.Sprintf("%s (%d)", sp.name, sp.code), Path: "/ledger_accounts/" + id,
			CreatedAt: now, UpdatedAt: now,
			LedgerAccountType: Base{ID: sp.typ, DisplayedAs: sp.typName, Path: "/ledger_account_types/" + sp.typ},
			IncludedInChart:   true, Name: sp.name, DisplayName: sp.name, NominalCode: sp.code, TaxRate: sp.tax,
			VisibleInBanking: sp.bank, VisibleInExpenses: sp.expenses, VisibleInJournals: true,
			VisibleInOtherPayments: sp.expenses, VisibleInOtherReceipts: sp.sales, VisibleInReporting: true,
			VisibleInSales: sp.sales, IsControlAccount: sp.control,
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

func (l LedgerAccount) ref() Base { return Base{ID: l.ID, DisplayedAs: l.DisplayedAs, Path: l.Path} }

// matchLedgerAccount is the ledger accounts' list filter: visible_in,
// ledger_account_type_id, search (name or nominal code) and
// updated_or_created_since.
func matchLedgerAccount(q url.Values, lp listParams) func(LedgerAccount) bool {
	visible, typ := q.Get("visible_in"), q.Get("ledger_account_type_id")
	return func(l LedgerAccount) bool {
		return (visible == "" || l.visibleIn(visible)) && (typ == "" || l.LedgerAccountType.ID == typ) &&
			(lp.search == "" || containsFold(l.Name, lp.search) || strings.Contains(strconv.Itoa(l.NominalCode), lp.search)) &&
			lp.changedSince(l.CreatedAt, l.UpdatedAt)
	}
}
