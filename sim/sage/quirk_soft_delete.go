package sagesim

import (
	"slices"
	"strings"
	"time"
)

// Quirk "soft delete" (DESIGN §3, B8): DELETE /contacts/{id} only sets deleted_at.
// The contact disappears from lists and GET/PUT answer 404, but its reference
// stays reserved, so a new POST with that reference fails 422 "Reference has
// already been taken". With the quirk off, delete is a hard delete and frees the
// reference.

// deleteContactLocked deletes c from b. s.mu must be held for writing.
func deleteContactLocked(b *business, c *Contact, now time.Time, q Quirks) {
	if q.SoftDeleteReservesReference {
		deleted := *c
		deleted.DeletedAt = &now
		deleted.UpdatedAt = now
		deleted.IsActive = false
		b.contacts[c.ID] = &deleted
		return
	}
	delete(b.contacts, c.ID)
	b.contactOrder = slices.DeleteFunc(b.contactOrder, func(id string) bool { return id == c.ID })
}

// referenceTaken reports whether another contact of b already uses ref
// (compared case-insensitively [I]). Soft-deleted contacts keep their reference
// while the quirk is on; with it off they are gone from b altogether.
func referenceTaken(b *business, ref string, self *Contact, q Quirks) bool {
	for _, c := range b.contacts {
		if self != nil && c.ID == self.ID {
			continue
		}
		if c.DeletedAt != nil && !q.SoftDeleteReservesReference {
			continue
		}
		if strings.EqualFold(c.Reference, ref) {
			return true
		}
	}
	return false
}
