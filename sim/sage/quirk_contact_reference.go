package sagesim

// Quirk §23 (swagger: Contact.reference maxLength 10; B8): a contact reference is
// at most 10 characters. A naive client that uses an e-mail address or a long
// order-derived key as the reference gets
//
//	422 [{"$severity":"error","$dataCode":"RecordInvalid","$message":"Reference is too long (maximum is 10 characters)","$source":"reference"}]
//
// With the quirk off up to 255 characters are accepted [I]. Uniqueness (case
// insensitive [I], soft-deleted contacts included while that quirk is on) is
// enforced either way: "Reference has already been taken".
func contactReferenceMax(q Quirks) int {
	if q.ContactReferenceMax10 {
		return 10
	}
	return 255
}
