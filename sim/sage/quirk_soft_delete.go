package sagesim

import (
	"strings"
	"time"
)

// deleteContactLocked is quirk SoftDeleteReservesReference: DELETE
// /contacts/{id} only sets deleted_at. The contact leaves lists and GET/PUT
// answer 404, but its reference stays taken. Off, the delete is a hard delete
// and frees the reference.
func deleteContactLocked(b *business, c *Contact, now time.Time, q Quirks) {
	if q.SoftDeleteReservesReference {
		c.DeletedAt, c.UpdatedAt, c.IsActive = &now, now, false
		return
	}
	b.contacts.remove(c.ID)
}

// referenceTaken reports whether another contact of b already uses ref
// (compared case-insensitively [I]), soft-deleted ones included.
func referenceTaken(b *business, ref string, self *Contact, q Quirks) bool {
	for _, c := range b.contacts.docs {
		if (self == nil || c.ID != self.ID) && (c.DeletedAt == nil || q.SoftDeleteReservesReference) &&
			strings.EqualFold(c.Reference, ref) {
			return true
		}
	}
	return false
}
