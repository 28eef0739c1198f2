package sagesim

import (
	"cmp"
	"net/http"
	"net/url"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// ContactTransaction is what contact payments and contact allocations share:
// the transaction they post and the artefacts they settle.
type ContactTransaction struct {
	Record
	Transaction        Base                `json:"transaction"`
	TransactionType    Base                `json:"transaction_type"`
	Contact            Base                `json:"contact"`
	Date               string              `json:"date"`
	AllocatedArtefacts []AllocatedArtefact `json:"allocated_artefacts"`
}

func (t *ContactTransaction) transaction() *ContactTransaction { return t }

// AllocatedArtefact is one entry of allocated_artefacts: the document settled
// and by how much.
type AllocatedArtefact struct {
	ID       string       `json:"id"`
	Artefact Base         `json:"artefact"`
	Amount   money.Amount `json:"amount"`
	Discount money.Amount `json:"discount"`
}

// ContactAllocation nets a customer's debits (invoices, positive amounts)
// against its credits (credit notes and payments on account, negative amounts).
type ContactAllocation struct {
	ContactTransaction
}

// transactionInput is the request of a contact allocation; a contact
// payment's request starts with the same fields.
type transactionInput struct {
	IdempotencyID      string                    `json:"idempotency_id"`
	TransactionTypeID  *string                   `json:"transaction_type_id"`
	ContactID          *string                   `json:"contact_id"`
	Date               *string                   `json:"date"`
	AllocatedArtefacts *[]allocatedArtefactInput `json:"allocated_artefacts"`
}

type allocatedArtefactInput struct {
	ArtefactID *string       `json:"artefact_id"`
	Amount     *money.Amount `json:"amount"`
	Discount   *money.Amount `json:"discount"`
}

// allocation is a checked allocated_artefacts entry: the amount as sent and
// what it settles (|amount| + discount).
type allocation struct {
	ref                      Base
	amount, discount, settle money.Amount
}

// Allocations returns a business's contact allocations, as Contacts does.
func (s *Server) Allocations(businessID string) []ContactAllocation {
	return snapshot(s, businessID, allocationKind)
}

// allocationKind lists allocations by contact_id, from_date and to_date.
var allocationKind = &kind[*ContactAllocation]{
	root: "contact_allocation", resource: "contact_allocations",
	store: func(b *business) *store[*ContactAllocation] { return &b.allocations },
	match: func(q url.Values, _ listParams) func(*ContactAllocation) bool {
		f := documentFilter{contactID: q.Get("contact_id"), from: q.Get("from_date"), to: q.Get("to_date")}
		return func(a *ContactAllocation) bool { return f.match(a.Contact.ID, "", a.Date) }
	},
}

// createContactAllocation is POST /contact_allocations: CUSTOMER_ALLOCATION of
// one contact's artefacts in one currency whose amounts net to zero; date
// defaults to today.
func (s *Server) createContactAllocation(r *http.Request, call *apiCall) *response {
	var in transactionInput
	return s.write(r, call, "contact_allocation", into("contact_allocation", &in, &in.IdempotencyID), func(b *business, _ Quirks, now time.Time) *response {
		var errs problems
		typ := str(in.TransactionTypeID)
		errs.when(typ == "", required("transaction_type_id"))
		errs.when(typ != "" && typ != "CUSTOMER_ALLOCATION", apiErr(CodeRecordInvalid, "is not a valid customer allocation type", "transaction_type_id"))
		contact := customerLocked(b, in.ContactID, &errs)
		errs = append(errs, checkDate(in.Date, "date", false)...)
		errs.when(len(valueOr(in.AllocatedArtefacts, nil)) == 0, required("allocated_artefacts"))
		if len(errs) > 0 {
			return unprocessable(errs...)
		}
		allocs, sum, errs := checkAllocationsLocked(b, contact.ID, "", *in.AllocatedArtefacts, func(bool) bool { return true }, true)
		switch {
		case len(errs) > 0:
			return unprocessable(errs...)
		case !sum.IsZero():
			return unprocessable(apiErr(CodeRecordInvalid, "The allocated amounts must net to zero.", "allocated_artefacts"))
		}
		alloc := &ContactAllocation{s.newTransactionLocked(b, "contact_allocations", typ, transactionTypes[typ], contact,
			cmp.Or(str(in.Date), now.Format(time.DateOnly)), allocs, now)}
		b.allocations.put(alloc, nil)
		return jsonResponse(http.StatusCreated, alloc)
	})
}

// newTransactionLocked starts a payment or an allocation shown as shown and
// settles its allocations.
func (s *Server) newTransactionLocked(b *business, resource, typ, shown string, c *Contact, date string, allocs []allocation,
	now time.Time) ContactTransaction {
	t := ContactTransaction{Record: s.newRecord(resource, now), TransactionType: transactionType(typ), Contact: c.ref(), Date: date}
	t.DisplayedAs = shown
	t.Transaction = Base{ID: s.newID(), DisplayedAs: shown, Path: "/transactions/" + t.ID}
	t.AllocatedArtefacts = make([]AllocatedArtefact, 0, len(allocs))
	for _, a := range allocs {
		settleLocked(b, a.ref.ID, a.settle, now)
		t.AllocatedArtefacts = append(t.AllocatedArtefacts, AllocatedArtefact{ID: s.newID(), Artefact: a.ref, Amount: a.amount, Discount: a.discount})
	}
	return t
}

// deleteSettling is DELETE of a payment or allocation (204): it is marked
// deleted and its allocations are reversed. release, when given, first undoes
// the rest of the document or refuses with the entries of a 422.
func deleteSettling[D interface {
	document
	transaction() *ContactTransaction
}](s *Server, k *kind[D], release func(*business, D) []APIError) apiHandler {
	return k.change(s, true, func(_ *http.Request, b *business, d D, now time.Time) *response {
		if release != nil {
			if errs := release(b, d); len(errs) > 0 {
				return unprocessable(errs...)
			}
		}
		for _, a := range d.transaction().AllocatedArtefacts {
			settleLocked(b, a.Artefact.ID, a.Amount.Abs().Add(a.Discount).Neg(), now)
		}
		d.record().DeletedAt, d.record().UpdatedAt = &now, now
		return &response{status: http.StatusNoContent}
	})
}

// salesArtefactLocked finds a sales invoice (a debit, owed by the customer) or
// a sales credit note (owed to it) of b by id.
func salesArtefactLocked(b *business, id string) (a *SalesArtefact, debit bool) {
	if inv, ok := b.invoices.docs[id]; ok {
		return inv.sales(), true
	}
	if cn, ok := b.creditNotes.docs[id]; ok {
		return cn.sales(), false
	}
	return nil, false
}

// checkAllocationsLocked validates allocated_artefacts: each artefact must
// exist, belong to contactID, be a debit or credit as allowed says, be in
// currencyID (or the first artefact's), be unpaid or part paid (Sage's message
// names none) and not be settled beyond its outstanding amount. With signed,
// credits carry negative amounts; otherwise every amount is positive. sum is
// the total of the amounts as sent.
func checkAllocationsLocked(b *business, contactID, currencyID string, items []allocatedArtefactInput,
	allowed func(debit bool) bool, signed bool) (out []allocation, sum money.Amount, errs problems) {
	pending := map[string]money.Amount{} // settled so far per artefact in this request
	fail := func(message, source string) { errs = append(errs, apiErr(CodeRecordInvalid, message, source)) }
	for _, it := range items {
		id := str(it.ArtefactID)
		var art *Artefact
		var ref Base
		debit := false
		if sa, d := salesArtefactLocked(b, id); sa != nil {
			art, ref, debit = &sa.Artefact, sa.ref(), d
		} else if poa, ok := b.onAccount[id]; ok {
			art, ref = &poa.Artefact, poa.ref()
		}
		switch {
		case id == "":
			errs = append(errs, required("allocated_artefacts.artefact_id"))
			continue
		case art == nil:
			errs = append(errs, apiErr(CodeRecordNotFound, "Couldn't find record.", "allocated_artefacts.artefact_id"))
			continue
		case art.Contact.ID != contactID:
			fail("The artefact does not belong to this contact.", "allocated_artefacts.artefact_id")
			continue
		case !allowed(debit):
			fail("The artefact cannot be allocated by this transaction type.", "allocated_artefacts.artefact_id")
			continue
		case art.Status.ID != "UNPAID" && art.Status.ID != "PART_PAID":
			fail("You can only pay unpaid or part-paid invoices.", "")
			continue
		}
		currencyID = cmp.Or(currencyID, art.Currency.ID)
		positive := !signed || debit
		amount, discount := valueOr(it.Amount, money.Zero).Cents(), valueOr(it.Discount, money.Zero).Cents()
		settle := amount.Abs().Add(discount)
		switch {
		case art.Currency.ID != currencyID:
			fail("The currency must match the currency of the allocated artefacts.", "currency_id")
		case it.Amount == nil:
			errs = append(errs, required("allocated_artefacts.amount"))
		case discount.Sign() < 0:
			fail("must be greater than or equal to 0", "allocated_artefacts.discount")
		case positive && amount.Sign() <= 0:
			fail("must be greater than 0", "allocated_artefacts.amount")
		case !positive && amount.Sign() >= 0:
			fail("must be less than 0 for a credit", "allocated_artefacts.amount")
		case pending[id].Add(settle).Cmp(art.OutstandingAmount) > 0:
			fail("The amount allocated exceeds the outstanding amount.", "allocated_artefacts.amount")
		default:
			pending[id] = pending[id].Add(settle)
			out, sum = append(out, allocation{ref, amount, discount, settle}), sum.Add(amount)
		}
	}
	return out, sum, errs
}

// settleLocked settles amount of artefact id (a negative amount reverses a
// settlement): its outstanding amount falls, total_paid rises (a discount
// counts as paid [I]), the status follows and so does the contact's balance.
func settleLocked(b *business, id string, amount money.Amount, now time.Time) {
	if a, debit := salesArtefactLocked(b, id); a != nil {
		a.TotalPaid, a.UpdatedAt = a.TotalPaid.Add(amount), now
		a.settle(amount)
		if debit {
			amount = amount.Neg()
		}
		adjustBalanceLocked(b, a.Contact.ID, amount)
	} else if poa, ok := b.onAccount[id]; ok {
		// A new copy, so payments already handed out keep the one they had.
		cp := *poa
		cp.UpdatedAt = now
		cp.settle(amount)
		b.onAccount[id] = &cp
		if pay, ok := b.payments.docs[cp.paymentID]; ok {
			pay.PaymentOnAccount = &cp
		}
		adjustBalanceLocked(b, cp.Contact.ID, amount)
	}
}

// adjustBalanceLocked adds delta to a contact's balance and marks it as having
// transactions (no longer deletable). A balance change does not touch the
// contact's updated_at [I], so incremental contact syncs do not see every
// invoice.
func adjustBalanceLocked(b *business, contactID string, delta money.Amount) {
	if c, ok := b.contacts.docs[contactID]; ok {
		c.Balance, c.Deletable = c.Balance.Add(delta), false
	}
}

// Outstanding returns what is left to pay on every posted artefact of a
// business, by id: sales invoices (owed by the customer), sales credit notes and
// payments on account (owed to the customer). Void documents show 0; drafts and
// deleted payments are left out. An unknown business gives nil.
func (s *Server) Outstanding(businessID string) (out map[string]money.Amount) {
	s.readBusiness(businessID, func(b *business) {
		out = make(map[string]money.Amount, len(b.invoices.docs)+len(b.creditNotes.docs)+len(b.onAccount))
		for _, ids := range [][]string{b.invoices.order, b.creditNotes.order} {
			for _, id := range ids {
				if a, _ := salesArtefactLocked(b, id); a.Status.ID != "DRAFT" {
					out[id] = a.OutstandingAmount
				}
			}
		}
		for id, poa := range b.onAccount {
			out[id] = poa.OutstandingAmount
		}
	})
	return out
}

// Balances returns each contact's balance field by contact id: outstanding
// invoices minus outstanding credit notes and payments on account, in the
// documents' currency [I]. An unknown business gives nil.
func (s *Server) Balances(businessID string) (out map[string]money.Amount) {
	s.readBusiness(businessID, func(b *business) {
		out = make(map[string]money.Amount, len(b.contacts.docs))
		for id, c := range b.contacts.docs {
			out[id] = c.Balance
		}
	})
	return out
}
