package sagesim

import (
	"errors"
	"fmt"
)

// DeleteInWebApp deletes a posted sales invoice or credit note of business
// the way a user can in Sage's web app when nothing is paid or allocated on it
// (the API's DELETE voids it instead): the document gets deleted_at, leaves
// the lists, GET answers 404, its contact's balance drops it, and it shows in
// the resource's deleted_since list. A document with payments or allocations
// is refused, as Sage's web app refuses it.
func (s *Server) DeleteInWebApp(businessID, id string) error {
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.businesses[businessID]
	if !ok {
		return fmt.Errorf("sagesim: no business %q", businessID)
	}
	a, debit := salesArtefactLocked(b, id)
	switch {
	case a == nil || a.DeletedAt != nil:
		return fmt.Errorf("sagesim: business %s has no sales invoice or credit note %q", businessID, id)
	case !a.TotalPaid.IsZero():
		return errors.New("sagesim: the document has payments or allocations; remove them before deleting it")
	}
	adjustBalanceLocked(b, a.Contact.ID, a.owed(debit).Neg())
	a.DeletedAt, a.UpdatedAt = &now, now
	return nil
}
