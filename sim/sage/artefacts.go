package sagesim

import (
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// Artefact kinds that payments and allocations settle.
const (
	kindInvoice          = "SALES_INVOICE"
	kindCreditNote       = "SALES_CREDIT_NOTE"
	kindPaymentOnAccount = "CUSTOMER_PAYMENT_ON_ACCOUNT"
)

// artefact is the payment view of an invoice, a credit note or a payment on
// account.
type artefact struct {
	kind        string
	ref         Base
	contactID   string
	currencyID  string
	status      string
	outstanding money.Amount
}

// debit reports whether the artefact is owed by the customer (an invoice);
// credit notes and payments on account are owed to it.
func (a artefact) debit() bool { return a.kind == kindInvoice }

// artefactLocked finds an allocatable document of b by id. s.mu must be held.
func artefactLocked(b *business, id string) (artefact, bool) {
	if inv, ok := b.invoices[id]; ok {
		return artefact{kind: kindInvoice, ref: Base{ID: inv.ID, DisplayedAs: inv.DisplayedAs, Path: inv.Path},
			contactID: inv.Contact.ID, currencyID: inv.Currency.ID, status: inv.Status.ID, outstanding: inv.OutstandingAmount}, true
	}
	if cn, ok := b.creditNotes[id]; ok {
		return artefact{kind: kindCreditNote, ref: Base{ID: cn.ID, DisplayedAs: cn.DisplayedAs, Path: cn.Path},
			contactID: cn.Contact.ID, currencyID: cn.Currency.ID, status: cn.Status.ID, outstanding: cn.OutstandingAmount}, true
	}
	if poa, ok := b.onAccount[id]; ok {
		return artefact{kind: kindPaymentOnAccount, ref: Base{ID: poa.ID, DisplayedAs: poa.DisplayedAs, Path: poa.Path},
			contactID: poa.Contact.ID, currencyID: poa.Currency.ID, status: poa.Status.ID, outstanding: poa.OutstandingAmount}, true
	}
	return artefact{}, false
}

// payable reports whether an artefact can take an allocation: only unpaid or
// part-paid documents can ("You can only pay unpaid or part-paid invoices.").
func (a artefact) payable() bool { return a.status == "UNPAID" || a.status == "PART_PAID" }

// notPayable is Sage's answer for an allocation to a paid (or void, or draft)
// artefact; it does not say which one [V PAY].
var notPayable = apiErr(CodeRecordInvalid, "You can only pay unpaid or part-paid invoices.", "")

// balanceContribution is what a document adds to its contact's balance:
// invoices add their outstanding amount, credit notes and payments on account
// subtract theirs; drafts and void documents add nothing.
func balanceContribution(debit bool, status string, outstanding money.Amount) money.Amount {
	if status == "DRAFT" || status == "VOID" {
		return money.Zero
	}
	if debit {
		return outstanding
	}
	return outstanding.Neg()
}

// adjustBalanceLocked adds delta to a contact's balance and marks it as having
// transactions (no longer deletable). A balance change does not touch the
// contact's updated_at [I], so incremental contact syncs do not see every
// invoice. s.mu must be held for writing.
func adjustBalanceLocked(b *business, contactID string, delta money.Amount, _ time.Time) {
	c, ok := b.contacts[contactID]
	if !ok {
		return
	}
	if delta.IsZero() && !c.Deletable {
		return
	}
	cp := *c
	cp.Balance = cp.Balance.Add(delta)
	cp.Deletable = false
	b.contacts[cp.ID] = &cp
}

// settleLocked settles amount of artefact id (a negative amount reverses a
// settlement): its outstanding amount falls, total_paid rises, the status moves
// UNPAID → PART_PAID → PAID, and the contact's balance follows. s.mu must be
// held for writing.
func settleLocked(b *business, id string, amount money.Amount, now time.Time) {
	if inv, ok := b.invoices[id]; ok {
		cp := *inv
		cp.TotalPaid = cp.TotalPaid.Add(amount)
		cp.OutstandingAmount = cp.OutstandingAmount.Sub(amount)
		cp.BaseCurrencyOutstanding = toBase(cp.OutstandingAmount, rateOf(cp.ExchangeRate))
		cp.Status = paymentStatus(cp.OutstandingAmount, cp.TotalAmount)
		cp.UpdatedAt = now
		b.invoices[id] = &cp
		adjustBalanceLocked(b, cp.Contact.ID, amount.Neg(), now)
		return
	}
	if cn, ok := b.creditNotes[id]; ok {
		cp := *cn
		cp.TotalPaid = cp.TotalPaid.Add(amount)
		cp.OutstandingAmount = cp.OutstandingAmount.Sub(amount)
		cp.BaseCurrencyOutstanding = toBase(cp.OutstandingAmount, rateOf(cp.ExchangeRate))
		cp.Status = paymentStatus(cp.OutstandingAmount, cp.TotalAmount)
		cp.UpdatedAt = now
		b.creditNotes[id] = &cp
		adjustBalanceLocked(b, cp.Contact.ID, amount, now)
		return
	}
	if poa, ok := b.onAccount[id]; ok {
		cp := *poa
		cp.OutstandingAmount = cp.OutstandingAmount.Sub(amount)
		cp.BaseCurrencyOutstandingAmount = toBase(cp.OutstandingAmount, rateOf(cp.ExchangeRate))
		cp.Status = paymentStatus(cp.OutstandingAmount, cp.TotalAmount)
		cp.UpdatedAt = now
		b.onAccount[id] = &cp
		if pay, ok := b.payments[cp.paymentID]; ok {
			pcp := *pay
			pcp.PaymentOnAccount = &cp
			b.payments[pcp.ID] = &pcp
		}
		adjustBalanceLocked(b, cp.Contact.ID, amount, now)
	}
}

// rateOf parses a stored exchange rate; an unparsable one counts as 1.
func rateOf(s string) money.Amount {
	r, err := money.Parse(s)
	if err != nil || r.Sign() <= 0 {
		return one
	}
	return r
}
