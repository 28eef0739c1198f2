package sagesim

import (
	"net/http"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// BankAccount is a business's bank account.
type BankAccount struct {
	ID                   string             `json:"id"`
	DisplayedAs          string             `json:"displayed_as"`
	Path                 string             `json:"$path"`
	CreatedAt            time.Time          `json:"created_at"`
	UpdatedAt            time.Time          `json:"updated_at"`
	DeletedAt            *time.Time         `json:"deleted_at"`
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

// seedBankAccounts creates one bank account per BANK ledger account.
func (s *Server) seedBankAccounts(now time.Time, ledger []LedgerAccount) []BankAccount {
	var out []BankAccount
	for _, l := range ledger {
		if l.LedgerAccountType.ID != "BANK" {
			continue
		}
		id := s.newID()
		method := paymentMethods[0]
		typ := Base{ID: "CHECKING", DisplayedAs: "Current", Path: "/bank_account_types/CHECKING"}
		if l.NominalCode == 1210 {
			method = paymentMethods[3]
			typ = Base{ID: "OTHER", DisplayedAs: "Other", Path: "/bank_account_types/OTHER"}
		}
		out = append(out, BankAccount{
			ID: id, DisplayedAs: l.DisplayedAs, Path: "/bank_accounts/" + id, CreatedAt: now, UpdatedAt: now,
			BankAccountDetails: BankAccountDetails{AccountName: l.Name, AccountNumber: "12345678", SortCode: "40-00-00"},
			LedgerAccount:      l.base(), BankAccountType: typ, NominalCode: l.NominalCode,
			Editable: true, Deletable: true, DefaultPaymentMethod: &method, IsActive: true, Currency: currencies[0],
		})
	}
	return out
}

func (s *Server) listBankAccounts(r *http.Request, c *apiCall) response {
	lp, bad := parseListParams(r)
	if bad != nil {
		return *bad
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var items []BankAccount
	for _, a := range c.business.bankAccounts {
		if lp.search != "" && !strings.Contains(strings.ToLower(a.DisplayedAs), lp.search) {
			continue
		}
		items = append(items, a)
	}
	return listOf(r, "bank_accounts", items, lp, func(a BankAccount) any {
		return baseItem{ID: a.ID, DisplayedAs: a.DisplayedAs, Path: a.Path}
	})
}

func (s *Server) getBankAccount(r *http.Request, c *apiCall) response {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, a := range c.business.bankAccounts {
		if a.ID == r.PathValue("id") {
			return jsonResponse(http.StatusOK, a)
		}
	}
	return notFound()
}
