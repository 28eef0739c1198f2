package sagesim

import (
	"net/http"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// ContactPayment is a customer receipt or refund as the API returns it.
type ContactPayment struct {
	ID                         string              `json:"id"`
	DisplayedAs                string              `json:"displayed_as"`
	Path                       string              `json:"$path"`
	CreatedAt                  time.Time           `json:"created_at"`
	UpdatedAt                  time.Time           `json:"updated_at"`
	DeletedAt                  *time.Time          `json:"deleted_at"`
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
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.businesses[businessID]
	if !ok {
		return nil
	}
	out := make([]ContactPayment, 0, len(b.paymentOrder))
	for _, id := range b.paymentOrder {
		out = append(out, *b.payments[id])
	}
	return out
}

// createContactPayment is POST /contact_payments. A CUSTOMER_RECEIPT settles
// invoices; any excess of total_amount over the allocated amounts becomes a
// payment on account. A CUSTOMER_REFUND pays back credit notes or payments on
// account and must be fully allocated [I].
func (s *Server) createContactPayment(r *http.Request, call *apiCall) response {
	var in contactPaymentInput
	if bad := decodeRoot(r, "contact_payment", &in); bad != nil {
		return *bad
	}
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	if resp, ok := s.replayLocked(b, "contact_payment", in.IdempotencyID); ok {
		return resp
	}
	var errs []APIError
	typ, typOK := paymentTypes[str(in.TransactionTypeID)]
	switch {
	case str(in.TransactionTypeID) == "":
		errs = append(errs, required("transaction_type_id"))
	case !typOK:
		errs = append(errs, apiErr(CodeRecordInvalid, "is not a valid customer payment type", "transaction_type_id"))
	}
	var contact *Contact
	if id := str(in.ContactID); id == "" {
		errs = append(errs, required("contact_id"))
	} else if c, ok := b.contacts[id]; !ok || c.DeletedAt != nil || !c.IsCustomer() {
		errs = append(errs, apiErr(CodeRecordInvalid, "Couldn't find Customer.", ""))
	} else {
		contact = c
	}
	var bank *BankAccount
	if id := str(in.BankAccountID); id == "" {
		errs = append(errs, required("bank_account_id"))
	} else {
		for i := range b.bankAccounts {
			if b.bankAccounts[i].ID == id {
				bank = &b.bankAccounts[i]
			}
		}
		if bank == nil {
			errs = append(errs, apiErr(CodeRecordInvalid, "Couldn't find bank account.", "bank_account_id"))
		}
	}
	errs = append(errs, checkDate(in.Date, "date", true)...)
	switch {
	case in.TotalAmount == nil:
		errs = append(errs, required("total_amount"))
	case in.TotalAmount.Sign() <= 0:
		errs = append(errs, apiErr(CodeRecordInvalid, "must be greater than 0", "total_amount"))
	}
	var method *Base
	if id := str(in.PaymentMethodID); id != "" {
		for _, m := range paymentMethods {
			if m.ID == id {
				method = &m
			}
		}
		if method == nil {
			errs = append(errs, apiErr(CodeRecordInvalid, "Couldn't find payment method.", "payment_method_id"))
		}
	}
	if tooLong(str(in.Reference), 25) {
		errs = append(errs, apiErr(CodeRecordInvalid, "Reference is too long (maximum is 25 characters)", "reference"))
	}
	// Without currency_id a payment is in the bank account's (the base)
	// currency, whatever the currency of the artefacts it pays.
	currency := currencies[0]
	if bank != nil {
		currency = bank.Currency
	}
	if id := str(in.CurrencyID); id != "" {
		if c, ok := currencyByID(id); ok {
			currency = c
		} else {
			errs = append(errs, apiErr(CodeRecordInvalid, "Couldn't find currency.", "currency_id"))
		}
	}
	rate := one
	if in.ExchangeRate != nil && in.ExchangeRate.Sign() <= 0 {
		errs = append(errs, apiErr(CodeRecordInvalid, "must be greater than 0", "exchange_rate"))
	} else if in.ExchangeRate != nil && currency.ID != currencies[0].ID {
		rate = *in.ExchangeRate // Sage: "will default to 1 if no value is set"
	}
	if len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}

	var items []allocatedArtefactInput
	if in.AllocatedArtefacts != nil {
		items = *in.AllocatedArtefacts
	}
	receipt := typ.ID == "CUSTOMER_RECEIPT"
	allocs, errs := checkAllocationsLocked(b, contact.ID, currency.ID, items, allocationRules{
		allowed: func(a artefact) bool { return a.debit() == receipt },
	})
	if len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	total := in.TotalAmount.Cents()
	allocated := money.Zero
	for _, a := range allocs {
		allocated = allocated.Add(a.amount)
	}
	excess := total.Sub(allocated)
	switch {
	case excess.Sign() < 0:
		return errorResponse(http.StatusUnprocessableEntity,
			apiErr(CodeRecordInvalid, "The total amount cannot be less than the sum of the allocated amounts.", "total_amount"))
	case excess.Sign() > 0 && !receipt:
		return errorResponse(http.StatusUnprocessableEntity,
			apiErr(CodeRecordInvalid, "A refund must be allocated in full.", "total_amount"))
	}

	id := s.newID()
	shown := str(in.Reference)
	if shown == "" {
		shown = typ.DisplayedAs
	}
	pay := &ContactPayment{
		ID: id, DisplayedAs: shown, Path: "/contact_payments/" + id, CreatedAt: now, UpdatedAt: now,
		Transaction:     Base{ID: s.newID(), DisplayedAs: shown, Path: "/transactions/" + id},
		TransactionType: typ, PaymentMethod: method,
		Contact:     Base{ID: contact.ID, DisplayedAs: contact.DisplayedAs, Path: contact.Path},
		BankAccount: Base{ID: bank.ID, DisplayedAs: bank.DisplayedAs, Path: bank.Path},
		Date:        str(in.Date), NetAmount: total, TotalAmount: total,
		Currency: currency, ExchangeRate: rate.Decimal().String(),
		BaseCurrencyNetAmount: toBase(total, rate), BaseCurrencyTotalAmount: toBase(total, rate),
		Reference: str(in.Reference), Editable: true,
	}
	if in.BaseCurrencyCurrencyCharge != nil {
		pay.BaseCurrencyCurrencyCharge = in.BaseCurrencyCurrencyCharge.Cents()
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
			Status:                        artefactStatuses["UNPAID"], paymentID: id,
		}
		b.onAccount[poaID] = poa
		pay.PaymentOnAccount = poa
		adjustBalanceLocked(b, contact.ID, excess.Neg(), now)
	}
	adjustBalanceLocked(b, contact.ID, money.Zero, now) // the contact now has transactions
	b.payments[id] = pay
	b.paymentOrder = append(b.paymentOrder, id)
	resp := jsonResponse(http.StatusCreated, pay)
	s.rememberLocked(b, "contact_payment", in.IdempotencyID, resp)
	return resp
}

func (s *Server) getContactPayment(r *http.Request, call *apiCall) response {
	s.mu.RLock()
	defer s.mu.RUnlock()
	pay, ok := call.business.payments[r.PathValue("id")]
	if !ok || pay.DeletedAt != nil {
		return notFound()
	}
	return jsonResponse(http.StatusOK, pay)
}

// listContactPayments supports contact_id, transaction_type_id, bank_account_id,
// from_date, to_date, search (reference) and updated_or_created_since.
func (s *Server) listContactPayments(r *http.Request, call *apiCall) response {
	lp, bad := parseListParams(r)
	if bad != nil {
		return *bad
	}
	q := r.URL.Query()
	f := documentFilter{contactID: q.Get("contact_id"), from: q.Get("from_date"), to: q.Get("to_date")}
	typ, bank := q.Get("transaction_type_id"), q.Get("bank_account_id")
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := call.business
	var items []*ContactPayment
	for _, id := range b.paymentOrder {
		p := b.payments[id]
		switch {
		case p.DeletedAt != nil, !lp.changedSince(p.CreatedAt, p.UpdatedAt), !f.match(p.Contact.ID, "", p.Date),
			typ != "" && p.TransactionType.ID != typ, bank != "" && p.BankAccount.ID != bank,
			lp.search != "" && !containsFold(p.Reference, lp.search):
			continue
		}
		items = append(items, p)
	}
	return listOf(r, "contact_payments", items, lp, func(p *ContactPayment) any {
		return baseItem{ID: p.ID, DisplayedAs: p.DisplayedAs, Path: p.Path, Reference: p.Reference}
	})
}

// deleteContactPayment is DELETE /contact_payments/{id} (204): its allocations
// are reversed, so the documents it paid are outstanding again, and its payment
// on account disappears. A payment whose payment on account has since been
// allocated or refunded cannot be deleted [I].
func (s *Server) deleteContactPayment(r *http.Request, call *apiCall) response {
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	pay, ok := b.payments[r.PathValue("id")]
	if !ok || pay.DeletedAt != nil {
		return notFound()
	}
	var poa *PaymentOnAccount
	if pay.PaymentOnAccount != nil {
		poa = b.onAccount[pay.PaymentOnAccount.ID]
		if poa != nil && !poa.OutstandingAmount.Equal(poa.TotalAmount) {
			return errorResponse(http.StatusUnprocessableEntity, apiErr(CodeRecordInvalid,
				"The payment on account of this payment has been allocated; remove those allocations first.", ""))
		}
	}
	reverseAllocationsLocked(b, pay.AllocatedArtefacts, now)
	if poa != nil {
		delete(b.onAccount, poa.ID)
		adjustBalanceLocked(b, poa.Contact.ID, poa.OutstandingAmount, now)
	}
	deleted := *b.payments[pay.ID]
	deleted.DeletedAt = &now
	deleted.UpdatedAt = now
	b.payments[pay.ID] = &deleted
	return response{status: http.StatusNoContent}
}
