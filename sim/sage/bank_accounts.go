package sagesim

import (
	"net/url"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

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

// seedBankAccounts creates one bank account per BANK ledger account.
func (s *Server) seedBankAccounts(now time.Time, ledger []LedgerAccount) []BankAccount {
	var out []BankAccount
	for _, l := range ledger {
		if l.LedgerAccountType.ID != "BANK" {
			continue
		}
		rec := s.newRecord("bank_accounts", now)
		rec.DisplayedAs = l.DisplayedAs
		method := paymentMethods[0]
		typ := Base{ID: "CHECKING", DisplayedAs: "Current", Path: "/bank_account_types/CHECKING"}
		if l.NominalCode == 1210 {
			method = paymentMethods[3]
			typ = Base{ID: "OTHER", DisplayedAs: "Other", Path: "/bank_account_types/OTHER"}
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

// matchBankAccount is the bank accounts' list filter: search on displayed_as.
func matchBankAccount(_ url.Values, lp listParams) func(BankAccount) bool {
	return func(a BankAccount) bool { return lp.search == "" || containsFold(a.DisplayedAs, lp.search) }
}
