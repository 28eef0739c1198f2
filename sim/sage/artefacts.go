package sagesim

import (
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// artefact is the payment view of an invoice, a credit note or a payment on
// account. A debit (an invoice) is owed by the customer; credit notes and
// payments on account are owed to it.
type artefact struct {
	debit       bool
	ref         Base
	contactID   string
	currencyID  string
	status      string
	outstanding money.Amount
}

// salesArtefactLocked finds a sales invoice (a debit) or a sales credit note of
// b by id. s.mu must be held.
func salesArtefactLocked(b *business, id string) (a *SalesArtefact, debit bool) {
	if inv, ok := b.invoices.docs[id]; ok {
		return inv.sales(), true
	}
	if cn, ok := b.creditNotes.docs[id]; ok {
		return cn.sales(), false
	}
	return nil, false
}

// artefactLocked finds an allocatable document of b by id. s.mu must be held.
func artefactLocked(b *business, id string) (artefact, bool) {
	if a, debit := salesArtefactLocked(b, id); a != nil {
		return artefact{debit: debit, ref: a.ref(), contactID: a.Contact.ID, currencyID: a.Currency.ID,
			status: a.Status.ID, outstanding: a.OutstandingAmount}, true
	}
	if poa, ok := b.onAccount[id]; ok {
		return artefact{ref: Base{ID: poa.ID, DisplayedAs: poa.DisplayedAs, Path: poa.Path},
			contactID: poa.Contact.ID, currencyID: poa.Currency.ID, status: poa.Status.ID, outstanding: poa.OutstandingAmount}, true
	}
	return artefact{}, false
}

// payable reports whether an artefact can take an allocation: only unpaid or
// part-paid documents can ("You can only pay unpaid or part-paid invoices.").
func (a artefact) payable() bool { return a.status == "UNPAID" || a.status == "PART_PAID" }

// notPayable is Sage's answer for an allocation to a paid (or void, or draft)
// artefact; it does not say which one.
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
func adjustBalanceLocked(b *business, contactID string, delta money.Amount) {
	if c, ok := b.contacts.docs[contactID]; ok {
		c.Balance, c.Deletable = c.Balance.Add(delta), false
	}
}

// settleLocked settles amount of artefact id (a negative amount reverses a
// settlement): its outstanding amount falls, total_paid rises, the status moves
// UNPAID → PART_PAID → PAID, and the contact's balance follows. s.mu must be
// held for writing.
func settleLocked(b *business, id string, amount money.Amount, now time.Time) {
	if a, debit := salesArtefactLocked(b, id); a != nil {
		a.TotalPaid = a.TotalPaid.Add(amount)
		a.OutstandingAmount = a.OutstandingAmount.Sub(amount)
		a.BaseCurrencyOutstanding = toBase(a.OutstandingAmount, rateOf(a.ExchangeRate))
		a.Status, a.UpdatedAt = paymentStatus(a.OutstandingAmount, a.TotalAmount), now
		if debit {
			amount = amount.Neg()
		}
		adjustBalanceLocked(b, a.Contact.ID, amount)
		return
	}
	if poa, ok := b.onAccount[id]; ok {
		// A new copy, so payments already handed out keep the one they had.
		cp := *poa
		cp.OutstandingAmount = cp.OutstandingAmount.Sub(amount)
		cp.BaseCurrencyOutstandingAmount = toBase(cp.OutstandingAmount, rateOf(cp.ExchangeRate))
		cp.Status, cp.UpdatedAt = paymentStatus(cp.OutstandingAmount, cp.TotalAmount), now
		b.onAccount[id] = &cp
		if pay, ok := b.payments.docs[cp.paymentID]; ok {
			pay.PaymentOnAccount = &cp
		}
		adjustBalanceLocked(b, cp.Contact.ID, amount)
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

// Outstanding returns what is left to pay on every posted artefact of a
// business, by id: sales invoices (owed by the customer), sales credit notes and
// payments on account (owed to the customer). Void documents show 0; drafts and
// deleted payments are left out. An unknown business gives nil.
func (s *Server) Outstanding(businessID string) (out map[string]money.Amount) {
	s.readBusiness(businessID, func(b *business) {
		out = make(map[string]money.Amount, len(b.invoices.docs)+len(b.creditNotes.docs)+len(b.onAccount))
		for id, inv := range b.invoices.docs {
			if inv.Status.ID != "DRAFT" {
				out[id] = inv.OutstandingAmount
			}
		}
		for id, cn := range b.creditNotes.docs {
			if cn.Status.ID != "DRAFT" {
				out[id] = cn.OutstandingAmount
			}
		}
		for id, poa := range b.onAccount {
			out[id] = poa.OutstandingAmount
		}
	})
	return out
}

// Balances returns each contact's balance by contact id: outstanding invoices
// minus outstanding credit notes and payments on account, in the documents'
// currency [I]. It is the contact's balance field. An unknown business gives
// nil.
func (s *Server) Balances(businessID string) (out map[string]money.Amount) {
	s.readBusiness(businessID, func(b *business) {
		out = make(map[string]money.Amount, len(b.contacts.docs))
		for id, c := range b.contacts.docs {
			out[id] = c.Balance
		}
	})
	return out
}
