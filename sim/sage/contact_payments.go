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
	Record
	Transaction                Base                `json:"transaction"`
	TransactionType            Base                `json:"transaction_type"`
	PaymentMethod              *Base               `json:"payment_method"`
	Contact                    Base                `json:"contact"`
	BankAccount                Base                `json:"bank_account"`
	Date                       string              `json:"date"`
	NetAmount                  money.Amount        `json:"net_amount"`
	TaxAmount                  money.Amount        `json:"tax_amount"`
	TotalAmount                money.Amount        `json:"total_amount"`
	Currency                   Base                `json:"currency"`
	ExchangeRate               string              `json:"exchange_rate"`
	BaseCurrencyNetAmount      money.Amount        `json:"base_currency_net_amount"`
	BaseCurrencyTaxAmount      money.Amount        `json:"base_currency_tax_amount"`
	BaseCurrencyTotalAmount    money.Amount        `json:"base_currency_total_amount"`
	BaseCurrencyCurrencyCharge money.Amount        `json:"base_currency_currency_charge"`
	Reference                  string              `json:"reference"`
	AllocatedArtefacts         []AllocatedArtefact `json:"allocated_artefacts"`
	PaymentOnAccount           *PaymentOnAccount   `json:"payment_on_account"`
	Editable                   bool                `json:"editable"`
}

// PaymentOnAccount is the unallocated excess of a customer receipt: a credit the
// customer can later be refunded or have allocated to an invoice.
type PaymentOnAccount struct {
	ID                            string       `json:"id"`
	DisplayedAs                   string       `json:"displayed_as"`
	Path                          string       `json:"$path"`
	CreatedAt                     time.Time    `json:"created_at"`
	UpdatedAt                     time.Time    `json:"updated_at"`
	ContactName                   string       `json:"contact_name"`
	ContactReference              string       `json:"contact_reference"`
	Contact                       Base         `json:"contact"`
	Date                          string       `json:"date"`
	Reference                     string       `json:"reference"`
	NetAmount                     money.Amount `json:"net_amount"`
	TaxAmount                     money.Amount `json:"tax_amount"`
	TotalAmount                   money.Amount `json:"total_amount"`
	OutstandingAmount             money.Amount `json:"outstanding_amount"`
	Currency                      Base         `json:"currency"`
	ExchangeRate                  string       `json:"exchange_rate"`
	BaseCurrencyNetAmount         money.Amount `json:"base_currency_net_amount"`
	BaseCurrencyTaxAmount         money.Amount `json:"base_currency_tax_amount"`
	BaseCurrencyTotalAmount       money.Amount `json:"base_currency_total_amount"`
	BaseCurrencyOutstandingAmount money.Amount `json:"base_currency_outstanding_amount"`
	Status                        Base         `json:"status"`

	paymentID string // the receipt it came from
}

type contactPaymentInput struct {
	IdempotencyID              string                    `json:"idempotency_id"`
	TransactionTypeID          *string                   `json:"transaction_type_id"`
	ContactID                  *string                   `json:"contact_id"`
	BankAccountID              *string                   `json:"bank_account_id"`
	PaymentMethodID            *string                   `json:"payment_method_id"`
	Date                       *string                   `json:"date"`
	TotalAmount                *money.Amount             `json:"total_amount"`
	NetAmount                  *money.Amount             `json:"net_amount"`
	TaxAmount                  *money.Amount             `json:"tax_amount"`
	CurrencyID                 *string                   `json:"currency_id"`
	ExchangeRate               *money.Amount             `json:"exchange_rate"`
	BaseCurrencyCurrencyCharge *money.Amount             `json:"base_currency_currency_charge"`
	Reference                  *string                   `json:"reference"`
	AllocatedArtefacts         *[]allocatedArtefactInput `json:"allocated_artefacts"`
}

var paymentTypes = map[string]Base{
	"CUSTOMER_RECEIPT": {ID: "CUSTOMER_RECEIPT", DisplayedAs: "Customer Receipt", Path: "/transaction_types/CUSTOMER_RECEIPT"},
	"CUSTOMER_REFUND":  {ID: "CUSTOMER_REFUND", DisplayedAs: "Customer Refund", Path: "/transaction_types/CUSTOMER_REFUND"},
}

// Payments returns a business's contact payments in creation order, deleted ones
// included (DeletedAt set). An unknown business gives nil.
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
func (s *Server) createContactPayment(r *http.Request, call *apiCall) response {
	var in contactPaymentInput
	return s.write(r, call, "contact_payment", into("contact_payment", &in, &in.IdempotencyID), func(b *business, _ Quirks, now time.Time) response {
		var errs problems
		typ, typOK := paymentTypes[str(in.TransactionTypeID)]
		switch {
		case str(in.TransactionTypeID) == "":
			errs = append(errs, required("transaction_type_id"))
		case !typOK:
			errs = append(errs, apiErr(CodeRecordInvalid, "is not a valid customer payment type", "transaction_type_id"))
		}
		contact := customerLocked(b, in.ContactID, &errs)
		bank, bankOK := byID(b.bankAccounts, str(in.BankAccountID))
		switch {
		case str(in.BankAccountID) == "":
			errs = append(errs, required("bank_account_id"))
		case !bankOK:
			errs = append(errs, apiErr(CodeRecordInvalid, "Couldn't find bank account.", "bank_account_id"))
		}
		errs = append(errs, checkDate(in.Date, "date", true)...)
		switch {
		case in.TotalAmount == nil:
			errs = append(errs, required("total_amount"))
		case in.TotalAmount.Sign() <= 0:
			errs = append(errs, apiErr(CodeRecordInvalid, "must be greater than 0", "total_amount"))
		}
		method, methodOK := byID(paymentMethods, str(in.PaymentMethodID))
		errs.when(!methodOK && str(in.PaymentMethodID) != "", apiErr(CodeRecordInvalid, "Couldn't find payment method.", "payment_method_id"))
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
			return errorResponse(http.StatusUnprocessableEntity, errs...)
		}
		receipt := typ.ID == "CUSTOMER_RECEIPT"
		allocs, errs := checkAllocationsLocked(b, contact.ID, currency.ID, valueOr(in.AllocatedArtefacts, nil), allocationRules{
			allowed: func(a artefact) bool { return a.debit == receipt },
		})
		if len(errs) > 0 {
			return errorResponse(http.StatusUnprocessableEntity, errs...)
		}
		total := in.TotalAmount.Cents()
		excess := total.Sub(allocated(allocs))
		switch {
		case excess.Sign() < 0:
			return errorResponse(http.StatusUnprocessableEntity,
				apiErr(CodeRecordInvalid, "The total amount cannot be less than the sum of the allocated amounts.", "total_amount"))
		case excess.Sign() > 0 && !receipt:
			return errorResponse(http.StatusUnprocessableEntity,
				apiErr(CodeRecordInvalid, "A refund must be allocated in full.", "total_amount"))
		}
		pay := &ContactPayment{
			Record: s.newRecord("contact_payments", now), TransactionType: typ, Contact: contact.ref(), BankAccount: bank.ref(),
			Date: str(in.Date), NetAmount: total, TotalAmount: total, Currency: currency, ExchangeRate: rate.Decimal().String(),
			BaseCurrencyNetAmount: toBase(total, rate), BaseCurrencyTotalAmount: toBase(total, rate),
			BaseCurrencyCurrencyCharge: valueOr(in.BaseCurrencyCurrencyCharge, money.Zero).Cents(),
			Reference:                  str(in.Reference), Editable: true,
		}
		pay.DisplayedAs = cmp.Or(pay.Reference, typ.DisplayedAs)
		pay.Transaction = Base{ID: s.newID(), DisplayedAs: pay.DisplayedAs, Path: "/transactions/" + pay.ID}
		if methodOK {
			pay.PaymentMethod = &method
		}
		pay.AllocatedArtefacts = s.applyAllocationsLocked(b, allocs, now)
		if excess.Sign() > 0 {
			poaID := s.newID()
			poa := &PaymentOnAccount{
				ID: poaID, DisplayedAs: "Payment on Account", Path: "/payments_on_account/" + poaID, CreatedAt: now, UpdatedAt: now,
				ContactName: contact.Name, ContactReference: contact.Reference, Contact: pay.Contact,
				Date: pay.Date, Reference: pay.Reference,
				NetAmount: excess, TotalAmount: excess, OutstandingAmount: excess,
				Currency: currency, ExchangeRate: pay.ExchangeRate,
				BaseCurrencyNetAmount: toBase(excess, rate), BaseCurrencyTotalAmount: toBase(excess, rate),
				BaseCurrencyOutstandingAmount: toBase(excess, rate),
				Status:                        artefactStatuses["UNPAID"], paymentID: pay.ID,
			}
			if b.onAccount == nil {
				b.onAccount = map[string]*PaymentOnAccount{}
			}
			b.onAccount[poaID] = poa
			pay.PaymentOnAccount = poa
			adjustBalanceLocked(b, contact.ID, excess.Neg())
		}
		adjustBalanceLocked(b, contact.ID, money.Zero) // the contact now has transactions
		b.payments.put(pay, nil)
		return jsonResponse(http.StatusCreated, pay)
	})
}

// deleteContactPayment is DELETE /contact_payments/{id} (204): its allocations
// are reversed, so the documents it paid are outstanding again, and its payment
// on account disappears. A payment whose payment on account has since been
// allocated or refunded cannot be deleted [I].
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

func (p *ContactPayment) allocations() []AllocatedArtefact { return p.AllocatedArtefacts }
