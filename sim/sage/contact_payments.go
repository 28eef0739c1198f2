package sagesim

import (
	"cmp"
	"net/http"
	"net/url"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// ContactPayment is a customer receipt or refund as the API returns it.
type ContactPayment struct {
	ContactTransaction
	PaymentMethod *Base `json:"payment_method"`
	BankAccount   Base  `json:"bank_account"`
	Amounts
	Currency                   Base              `json:"currency"`
	ExchangeRate               string            `json:"exchange_rate"`
	BaseCurrencyCurrencyCharge money.Amount      `json:"base_currency_currency_charge"`
	Reference                  string            `json:"reference"`
	PaymentOnAccount           *PaymentOnAccount `json:"payment_on_account"`
	Editable                   bool              `json:"editable"`
}

// PaymentOnAccount is the unallocated excess of a customer receipt: a credit the
// customer can later be refunded or have allocated to an invoice.
type PaymentOnAccount struct {
	Base
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Artefact
	paymentID string // the receipt it came from
}

// contactPaymentInput repeats transactionInput's fields rather than embed it,
// so that a field of the wrong type is named as sent.
type contactPaymentInput struct {
	IdempotencyID              string                    `json:"idempotency_id"`
	TransactionTypeID          *string                   `json:"transaction_type_id"`
	ContactID                  *string                   `json:"contact_id"`
	Date                       *string                   `json:"date"`
	AllocatedArtefacts         *[]allocatedArtefactInput `json:"allocated_artefacts"`
	BankAccountID              *string                   `json:"bank_account_id"`
	PaymentMethodID            *string                   `json:"payment_method_id"`
	TotalAmount                *money.Amount             `json:"total_amount"`
	NetAmount                  *money.Amount             `json:"net_amount"`
	TaxAmount                  *money.Amount             `json:"tax_amount"`
	CurrencyID                 *string                   `json:"currency_id"`
	ExchangeRate               *money.Amount             `json:"exchange_rate"`
	BaseCurrencyCurrencyCharge *money.Amount             `json:"base_currency_currency_charge"`
	Reference                  *string                   `json:"reference"`
}

// Payments returns a business's contact payments, as Contacts does contacts.
func (s *Server) Payments(businessID string) []ContactPayment {
	return snapshot(s, businessID, paymentKind)
}

// paymentKind lists payments by contact_id, transaction_type_id,
// bank_account_id, from_date, to_date and search (reference).
var paymentKind = &kind[*ContactPayment]{
	root: "contact_payment", resource: "contact_payments",
	store: func(b *business) *store[*ContactPayment] { return &b.payments },
	match: func(q url.Values, lp listParams) func(*ContactPayment) bool {
		f := documentFilter{contactID: q.Get("contact_id"), from: q.Get("from_date"), to: q.Get("to_date")}
		typ, bank := q.Get("transaction_type_id"), q.Get("bank_account_id")
		return func(p *ContactPayment) bool {
			return f.match(p.Contact.ID, "", p.Date) && (typ == "" || p.TransactionType.ID == typ) &&
				(bank == "" || p.BankAccount.ID == bank) && (lp.search == "" || containsFold(p.Reference, lp.search))
		}
	},
	reference: func(p *ContactPayment) string { return p.Reference },
}

// createContactPayment is POST /contact_payments. A CUSTOMER_RECEIPT settles
// invoices; any excess of total_amount over the allocated amounts becomes a
// payment on account. A CUSTOMER_REFUND pays back credit notes or payments on
// account and must be fully allocated [I].
func (s *Server) createContactPayment(r *http.Request, call *apiCall) *response {
	var in contactPaymentInput
	return s.write(r, call, "contact_payment", into("contact_payment", &in, &in.IdempotencyID), func(b *business, _ Quirks, now time.Time) *response {
		var errs problems
		typ := str(in.TransactionTypeID)
		errs.when(typ == "", required("transaction_type_id"))
		errs.when(typ != "" && typ != "CUSTOMER_RECEIPT" && typ != "CUSTOMER_REFUND",
			apiErr(CodeRecordInvalid, "is not a valid customer payment type", "transaction_type_id"))
		contact := customerLocked(b, in.ContactID, &errs)
		bank, bankOK := lookup(&errs, b.bankAccounts, in.BankAccountID, "bank_account_id", true, CodeRecordInvalid, "Couldn't find bank account.")
		errs = append(errs, checkDate(in.Date, "date", true)...)
		errs.when(in.TotalAmount == nil, required("total_amount"))
		errs.when(in.TotalAmount != nil && in.TotalAmount.Sign() <= 0, apiErr(CodeRecordInvalid, "must be greater than 0", "total_amount"))
		method, methodOK := lookup(&errs, paymentMethods, in.PaymentMethodID, "payment_method_id", false, CodeRecordInvalid, "Couldn't find payment method.")
		errs = append(errs, maxLength(str(in.Reference), 25, "reference")...)
		// Without currency_id a payment is in the bank account's (the base)
		// currency, whatever the currency of the artefacts it pays.
		def := currencies[0]
		if bankOK {
			def = bank.Currency
		}
		currency, _ := currencyOf(in.CurrencyID, def, &errs)
		rate := exchangeRate(in.ExchangeRate, currency, &errs)
		if len(errs) > 0 {
			return unprocessable(errs...)
		}
		receipt := typ == "CUSTOMER_RECEIPT"
		allocs, sum, errs := checkAllocationsLocked(b, contact.ID, currency.ID, valueOr(in.AllocatedArtefacts, nil),
			func(debit bool) bool { return debit == receipt }, false)
		total := in.TotalAmount.Cents()
		excess := total.Sub(sum)
		switch {
		case len(errs) > 0:
			return unprocessable(errs...)
		case excess.Sign() < 0:
			return unprocessable(
				apiErr(CodeRecordInvalid, "The total amount cannot be less than the sum of the allocated amounts.", "total_amount"))
		case excess.Sign() > 0 && !receipt:
			return unprocessable(apiErr(CodeRecordInvalid, "A refund must be allocated in full.", "total_amount"))
		}
		ref := str(in.Reference)
		pay := &ContactPayment{
			ContactTransaction: s.newTransactionLocked(b, "contact_payments", typ, cmp.Or(ref, transactionTypes[typ]), contact, str(in.Date), allocs, now),
			BankAccount:        bank.ref(), Amounts: amounts(total, money.Zero, rate), Currency: currency, ExchangeRate: rate.Decimal().String(),
			BaseCurrencyCurrencyCharge: valueOr(in.BaseCurrencyCurrencyCharge, money.Zero).Cents(), Reference: ref, Editable: true,
		}
		if methodOK {
			pay.PaymentMethod = &method
		}
		if excess.Sign() > 0 {
			poa := &PaymentOnAccount{Base: link("payments_on_account", s.newID(), "Payment on Account"), CreatedAt: now, UpdatedAt: now,
				Artefact: Artefact{Contact: pay.Contact, ContactName: contact.Name, ContactReference: contact.Reference, Date: pay.Date,
					Reference: ref, Amounts: amounts(excess, money.Zero, rate), Currency: currency, ExchangeRate: pay.ExchangeRate,
					OutstandingAmount: excess, BaseCurrencyOutstandingAmount: toBase(excess, rate), Status: status("UNPAID"), rate: rate},
				paymentID: pay.ID}
			if b.onAccount == nil {
				b.onAccount = map[string]*PaymentOnAccount{}
			}
			b.onAccount[poa.ID], pay.PaymentOnAccount = poa, poa
			adjustBalanceLocked(b, contact.ID, excess.Neg())
		}
		adjustBalanceLocked(b, contact.ID, money.Zero) // the contact now has transactions
		b.payments.put(pay, nil)
		return jsonResponse(http.StatusCreated, pay)
	})
}

// deleteContactPayment also removes the payment's payment on account; one that
// has since been allocated or refunded blocks the delete [I].
func (s *Server) deleteContactPayment() apiHandler {
	return deleteSettling(s, paymentKind, func(b *business, pay *ContactPayment) []APIError {
		if pay.PaymentOnAccount == nil || b.onAccount[pay.PaymentOnAccount.ID] == nil {
			return nil
		}
		poa := b.onAccount[pay.PaymentOnAccount.ID]
		if !poa.OutstandingAmount.Equal(poa.TotalAmount) {
			return []APIError{apiErr(CodeRecordInvalid,
				"The payment on account of this payment has been allocated; remove those allocations first.", "")}
		}
		delete(b.onAccount, poa.ID)
		adjustBalanceLocked(b, poa.Contact.ID, poa.OutstandingAmount)
		return nil
	})
}
