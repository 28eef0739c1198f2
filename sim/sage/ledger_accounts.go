package sagesim

import (
	"fmt"
	"net/http"
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
	switch scope {
	case "sales":
		return l.VisibleInSales
	case "banking":
		return l.VisibleInBanking
	case "expenses":
		return l.VisibleInExpenses
	case "journals":
		return l.VisibleInJournals
	case "other_payments":
		return l.VisibleInOtherPayments
	case "other_receipts":
		return l.VisibleInOtherReceipts
	case "reporting":
		return l.VisibleInReporting
	}
	return false
}

// seedLedgerAccounts builds a small UK chart: the sales accounts Ledger maps
// lines and shipping to, a bank account, control accounts and an expense.
func (s *Server) seedLedgerAccounts(now time.Time) []LedgerAccount {
	std, _ := taxRateByID("GB_STANDARD")
	zero, _ := taxRateByID("GB_ZERO")
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
		{4000, "Sales Type A", "SALES", "Sales", std.base(), true, false, false, false},
		{4010, "Sales Type B", "SALES", "Sales", std.base(), true, false, false, false},
		{4020, "Sales Type C", "SALES", "Sales", zero.base(), true, false, false, false},
		{4900, "Miscellaneous Income", "OTHER_INCOME", "Other Income", std.base(), true, false, false, false},
		{4905, "Distribution and Carriage", "SALES", "Sales", std.base(), true, false, false, false},
		{5000, "Cost of sales - goods", "DIRECT_EXPENSES", "Direct Expenses", std.base(), false, false, true, false},
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

func (b *business) ledgerAccount(id string) (LedgerAccount, bool) {
	for _, l := range b.ledgerAccounts {
		if l.ID == id {
			return l, true
		}
	}
	return LedgerAccount{}, false
}

func (b *business) ledgerAccountByCode(code int) LedgerAccount {
	for _, l := range b.ledgerAccounts {
		if l.NominalCode == code {
			return l
		}
	}
	return LedgerAccount{}
}

func (l LedgerAccount) base() Base { return Base{ID: l.ID, DisplayedAs: l.DisplayedAs, Path: l.Path} }

func (s *Server) listLedgerAccounts(r *http.Request, c *apiCall) response {
	lp, bad := parseListParams(r)
	if bad != nil {
		return *bad
	}
	q := r.URL.Query()
	visible, typ := q.Get("visible_in"), q.Get("ledger_account_type_id")
	s.mu.RLock()
	defer s.mu.RUnlock()
	var items []LedgerAccount
	for _, l := range c.business.ledgerAccounts {
		if visible != "" && !l.visibleIn(visible) {
			continue
		}
		if typ != "" && l.LedgerAccountType.ID != typ {
			continue
		}
		if lp.search != "" && !strings.Contains(strings.ToLower(l.Name), lp.search) &&
			!strings.Contains(strconv.Itoa(l.NominalCode), lp.search) {
			continue
		}
		if !lp.changedSince(l.CreatedAt, l.UpdatedAt) {
			continue
		}
		items = append(items, l)
	}
	return listOf(r, "ledger_accounts", items, lp, func(l LedgerAccount) any {
		return baseItem{ID: l.ID, DisplayedAs: l.DisplayedAs, Path: l.Path}
	})
}

func (s *Server) getLedgerAccount(r *http.Request, c *apiCall) response {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := c.business.ledgerAccount(r.PathValue("id"))
	if !ok {
		return notFound()
	}
	return jsonResponse(http.StatusOK, l)
}
