package sagesim

import (
	"net/http"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// AllocatedArtefact is one entry of a payment's or an allocation's
// allocated_artefacts: the document settled and by how much.
type AllocatedArtefact struct {
	ID       string       `json:"id"`
	Artefact Base         `json:"artefact"`
	Amount   money.Amount `json:"amount"`
	Discount money.Amount `json:"discount"`
}

// allocatedArtefactInput is an allocated_artefacts entry of a request.
type allocatedArtefactInput struct {
	ArtefactID *string       `json:"artefact_id"`
	Amount     *money.Amount `json:"amount"`
	Discount   *money.Amount `json:"discount"`
}

// allocation is a checked allocated_artefacts entry: the artefact and the amount
// it is settled by (amount plus discount, always positive).
type allocation struct {
	art      artefact
	amount   money.Amount // as sent (negative for credits in contact allocations)
	discount money.Amount
	settle   money.Amount
}

// allocationRules say which artefacts an allocating request may name and with
// which sign.
type allocationRules struct {
	// allowed reports whether the artefact kind may be allocated.
	allowed func(artefact) bool
	// signed: credits (credit notes, payments on account) carry negative
	// amounts and debits (invoices) positive ones, as in contact allocations;
	// otherwise every amount is positive.
	signed bool
}

// checkAllocationsLocked validates allocated_artefacts against contactID and
// currencyID (empty: take the first artefact's currency). Each artefact must
// exist, belong to the contact, be in the currency, be unpaid or part paid,
// and not be settled beyond its outstanding amount. s.mu must be held.
func checkAllocationsLocked(b *business, contactID, currencyID string, items []allocatedArtefactInput,
	rules allocationRules) ([]allocation, []APIError) {
	var out []allocation
	var errs problems
	pending := map[string]money.Amount{} // settled so far per artefact in this request
	for _, it := range items {
		id := str(it.ArtefactID)
		if id == "" {
			errs = append(errs, required("allocated_artefacts.artefact_id"))
			continue
		}
		art, ok := artefactLocked(b, id)
		switch {
		case !ok:
			errs = append(errs, apiErr(CodeRecordNotFound, "Couldn't find record.", "allocated_artefacts.artefact_id"))
			continue
		case art.contactID != contactID:
			errs = append(errs, apiErr(CodeRecordInvalid, "The artefact does not belong to this contact.", "allocated_artefacts.artefact_id"))
			continue
		case !rules.allowed(art):
			errs = append(errs, apiErr(CodeRecordInvalid, "The artefact cannot be allocated by this transaction type.", "allocated_artefacts.artefact_id"))
			continue
		case !art.payable():
			errs = append(errs, notPayable)
			continue
		}
		if currencyID == "" {
			currencyID = art.currencyID
		}
		if art.currencyID != currencyID {
			errs = append(errs, apiErr(CodeRecordInvalid, "The currency must match the currency of the allocated artefacts.", "currency_id"))
			continue
		}
		if it.Amount == nil {
			errs = append(errs, required("allocated_artefacts.amount"))
			continue
		}
		amount := it.Amount.Cents()
		discount := money.Zero
		if it.Discount != nil {
			discount = it.Discount.Cents()
		}
		if discount.Sign() < 0 {
			errs = append(errs, apiErr(CodeRecordInvalid, "must be greater than or equal to 0", "allocated_artefacts.discount"))
			continue
		}
		wantSign := 1
		if rules.signed && !art.debit {
			wantSign = -1
		}
		if amount.Sign() != wantSign {
			msg := "must be greater than 0"
			if wantSign < 0 {
				msg = "must be less than 0 for a credit"
			}
			errs = append(errs, apiErr(CodeRecordInvalid, msg, "allocated_artefacts.amount"))
			continue
		}
		settle := amount.Abs().Add(discount)
		total := pending[id].Add(settle)
		if total.Cmp(art.outstanding) > 0 {
			errs = append(errs, apiErr(CodeRecordInvalid, "The amount allocated exceeds the outstanding amount.", "allocated_artefacts.amount"))
			continue
		}
		pending[id] = total
		out = append(out, allocation{art: art, amount: amount, discount: discount, settle: settle})
	}
	return out, errs
}

// applyAllocationsLocked settles each allocation and returns the response
// entries. s.mu must be held for writing.
func (s *Server) applyAllocationsLocked(b *business, allocs []allocation, now time.Time) []AllocatedArtefact {
	out := make([]AllocatedArtefact, 0, len(allocs))
	for _, a := range allocs {
		settleLocked(b, a.art.ref.ID, a.settle, now)
		out = append(out, AllocatedArtefact{ID: s.newID(), Artefact: a.art.ref, Amount: a.amount, Discount: a.discount})
	}
	return out
}

// reverseAllocationsLocked undoes applyAllocationsLocked. s.mu must be held
// for writing.
func reverseAllocationsLocked(b *business, allocs []AllocatedArtefact, now time.Time) {
	for _, a := range allocs {
		settleLocked(b, a.Artefact.ID, a.Amount.Abs().Add(a.Discount).Neg(), now)
	}
}

// allocated is the sum of the amounts as sent.
func allocated(allocs []allocation) money.Amount {
	sum := money.Zero
	for _, a := range allocs {
		sum = sum.Add(a.amount)
	}
	return sum
}

// deleteSettling is DELETE /contact_payments/{id} and /contact_allocations/{id}
// (204): the document is marked deleted and what it allocated is reversed, so
// the documents it settled are outstanding again. release, when given, first
// undoes the rest of the document or refuses with the entries of a 422.
func deleteSettling[D interface {
	document
	allocations() []AllocatedArtefact
}](s *Server, k *kind[D], release func(*business, D) []APIError) apiHandler {
	return k.change(s, func(_ *http.Request, b *business, d D, now time.Time) response {
		if release != nil {
			if errs := release(b, d); len(errs) > 0 {
				return errorResponse(http.StatusUnprocessableEntity, errs...)
			}
		}
		reverseAllocationsLocked(b, d.allocations(), now)
		d.record().DeletedAt, d.record().UpdatedAt = &now, now
		return response{status: http.StatusNoContent}
	})
}
