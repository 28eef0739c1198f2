package sagesim

import (
	"cmp"
	"net/http"
	"net/url"
	"time"
)

// ContactAllocation nets a customer's debits (invoices, positive amounts)
// against its credits (credit notes and payments on account, negative amounts).
type ContactAllocation struct {
	Record
	Transaction        Base                `json:"transaction"`
	TransactionType    Base                `json:"transaction_type"`
	Date               string              `json:"date"`
	Contact            Base                `json:"contact"`
	AllocatedArtefacts []AllocatedArtefact `json:"allocated_artefacts"`
}

func (a *ContactAllocation) allocations() []AllocatedArtefact { return a.AllocatedArtefacts }

type contactAllocationInput struct {
	IdempotencyID      string                    `json:"idempotency_id"`
	TransactionTypeID  *string                   `json:"transaction_type_id"`
	ContactID          *string                   `json:"contact_id"`
	Date               *string                   `json:"date"`
	AllocatedArtefacts *[]allocatedArtefactInput `json:"allocated_artefacts"`
}

// Allocations returns a business's contact allocations in creation order,
// deleted ones included. An unknown business gives nil.
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
// one contact's artefacts whose amounts net to zero.
func (s *Server) createContactAllocation(r *http.Request, call *apiCall) response {
	var in contactAllocationInput
	return s.write(r, call, "contact_allocation", into("contact_allocation", &in, &in.IdempotencyID), func(b *business, _ Quirks, now time.Time) response {
		var errs problems
		switch t := str(in.TransactionTypeID); t {
		case "":
			errs = append(errs, required("transaction_type_id"))
		case "CUSTOMER_ALLOCATION":
		default:
			errs = append(errs, apiErr(CodeRecordInvalid, "is not a valid customer allocation type", "transaction_type_id"))
		}
		contact := customerLocked(b, in.ContactID, &errs)
		errs = append(errs, checkDate(in.Date, "date", false)...)
		errs.when(in.AllocatedArtefacts == nil || len(*in.AllocatedArtefacts) == 0, required("allocated_artefacts"))
		if len(errs) > 0 {
			return errorResponse(http.StatusUnprocessableEntity, errs...)
		}
		allocs, errs := checkAllocationsLocked(b, contact.ID, "", *in.AllocatedArtefacts, allocationRules{
			allowed: func(artefact) bool { return true }, signed: true,
		})
		if len(errs) > 0 {
			return errorResponse(http.StatusUnprocessableEntity, errs...)
		}
		if !allocated(allocs).IsZero() {
			return errorResponse(http.StatusUnprocessableEntity,
				apiErr(CodeRecordInvalid, "The allocated amounts must net to zero.", "allocated_artefacts"))
		}
		typ := Base{ID: "CUSTOMER_ALLOCATION", DisplayedAs: "Customer Allocation", Path: "/transaction_types/CUSTOMER_ALLOCATION"}
		alloc := &ContactAllocation{Record: s.newRecord("contact_allocations", now), TransactionType: typ,
			Date: cmp.Or(str(in.Date), now.Format(time.DateOnly)), Contact: contact.ref()}
		alloc.DisplayedAs = typ.DisplayedAs
		alloc.Transaction = Base{ID: s.newID(), DisplayedAs: typ.DisplayedAs, Path: "/transactions/" + alloc.ID}
		alloc.AllocatedArtefacts = s.applyAllocationsLocked(b, allocs, now)
		b.allocations.put(alloc, nil)
		return jsonResponse(http.StatusCreated, alloc)
	})
}
