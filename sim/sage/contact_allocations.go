package sagesim

import (
	"net/http"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// ContactAllocation nets a customer's debits (invoices, positive amounts)
// against its credits (credit notes and payments on account, negative amounts).
type ContactAllocation struct {
	ID                 string              `json:"id"`
	DisplayedAs        string              `json:"displayed_as"`
	Path               string              `json:"$path"`
	CreatedAt          time.Time           `json:"created_at"`
	UpdatedAt          time.Time           `json:"updated_at"`
	DeletedAt          *time.Time          `json:"deleted_at"`
	Transaction        Base                `json:"transaction"`
	TransactionType    Base                `json:"transaction_type"`
	Date               string              `json:"date"`
	Contact            Base                `json:"contact"`
	AllocatedArtefacts []AllocatedArtefact `json:"allocated_artefacts"`
}

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
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.businesses[businessID]
	if !ok {
		return nil
	}
	out := make([]ContactAllocation, 0, len(b.allocationOrder))
	for _, id := range b.allocationOrder {
		out = append(out, *b.allocations[id])
	}
	return out
}

// createContactAllocation is POST /contact_allocations: CUSTOMER_ALLOCATION of
// one contact's artefacts whose amounts net to zero.
func (s *Server) createContactAllocation(r *http.Request, call *apiCall) response {
	var in contactAllocationInput
	if bad := decodeRoot(r, "contact_allocation", &in); bad != nil {
		return *bad
	}
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	if resp, ok := s.replayLocked(b, "contact_allocation", in.IdempotencyID); ok {
		return resp
	}
	var errs []APIError
	switch t := str(in.TransactionTypeID); t {
	case "":
		errs = append(errs, required("transaction_type_id"))
	case "CUSTOMER_ALLOCATION":
	default:
		errs = append(errs, apiErr(CodeRecordInvalid, "is not a valid customer allocation type", "transaction_type_id"))
	}
	var contact *Contact
	if id := str(in.ContactID); id == "" {
		errs = append(errs, required("contact_id"))
	} else if c, ok := b.contacts[id]; !ok || c.DeletedAt != nil || !c.IsCustomer() {
		errs = append(errs, apiErr(CodeRecordInvalid, "Couldn't find Customer.", ""))
	} else {
		contact = c
	}
	errs = append(errs, checkDate(in.Date, "date", false)...)
	if in.AllocatedArtefacts == nil || len(*in.AllocatedArtefacts) == 0 {
		errs = append(errs, required("allocated_artefacts"))
	}
	if len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	allocs, errs := checkAllocationsLocked(b, contact.ID, "", *in.AllocatedArtefacts, allocationRules{
		allowed: func(artefact) bool { return true }, signed: true,
	})
	if len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	net := money.Zero
	for _, a := range allocs {
		net = net.Add(a.amount)
	}
	if !net.IsZero() {
		return errorResponse(http.StatusUnprocessableEntity,
			apiErr(CodeRecordInvalid, "The allocated amounts must net to zero.", "allocated_artefacts"))
	}
	date := str(in.Date)
	if date == "" {
		date = now.Format(time.DateOnly)
	}
	id := s.newID()
	typ := Base{ID: "CUSTOMER_ALLOCATION", DisplayedAs: "Customer Allocation", Path: "/transaction_types/CUSTOMER_ALLOCATION"}
	alloc := &ContactAllocation{
		ID: id, DisplayedAs: typ.DisplayedAs, Path: "/contact_allocations/" + id, CreatedAt: now, UpdatedAt: now,
		Transaction:     Base{ID: s.newID(), DisplayedAs: typ.DisplayedAs, Path: "/transactions/" + id},
		TransactionType: typ, Date: date,
		Contact: Base{ID: contact.ID, DisplayedAs: contact.DisplayedAs, Path: contact.Path},
	}
	alloc.AllocatedArtefacts = s.applyAllocationsLocked(b, allocs, now)
	b.allocations[id] = alloc
	b.allocationOrder = append(b.allocationOrder, id)
	resp := jsonResponse(http.StatusCreated, alloc)
	s.rememberLocked(b, "contact_allocation", in.IdempotencyID, resp)
	return resp
}

func (s *Server) getContactAllocation(r *http.Request, call *apiCall) response {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := call.business.allocations[r.PathValue("id")]
	if !ok || a.DeletedAt != nil {
		return notFound()
	}
	return jsonResponse(http.StatusOK, a)
}

// listContactAllocations supports contact_id, from_date, to_date and
// updated_or_created_since.
func (s *Server) listContactAllocations(r *http.Request, call *apiCall) response {
	lp, bad := parseListParams(r)
	if bad != nil {
		return *bad
	}
	q := r.URL.Query()
	f := documentFilter{contactID: q.Get("contact_id"), from: q.Get("from_date"), to: q.Get("to_date")}
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := call.business
	var items []*ContactAllocation
	for _, id := range b.allocationOrder {
		a := b.allocations[id]
		if a.DeletedAt != nil || !lp.changedSince(a.CreatedAt, a.UpdatedAt) || !f.match(a.Contact.ID, "", a.Date) {
			continue
		}
		items = append(items, a)
	}
	return listOf(r, "contact_allocations", items, lp, func(a *ContactAllocation) any {
		return baseItem{ID: a.ID, DisplayedAs: a.DisplayedAs, Path: a.Path}
	})
}

// deleteContactAllocation is DELETE /contact_allocations/{id} (204): the
// allocation is reversed.
func (s *Server) deleteContactAllocation(r *http.Request, call *apiCall) response {
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	a, ok := b.allocations[r.PathValue("id")]
	if !ok || a.DeletedAt != nil {
		return notFound()
	}
	reverseAllocationsLocked(b, a.AllocatedArtefacts, now)
	deleted := *a
	deleted.DeletedAt = &now
	deleted.UpdatedAt = now
	b.allocations[a.ID] = &deleted
	return response{status: http.StatusNoContent}
}
