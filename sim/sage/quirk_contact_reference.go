package sagesim

// contactReferenceMax is quirk ContactReferenceMax10: Sage's schema limits a
// contact reference to 10 characters, so an e-mail address or a long
// order-derived key fails 422 "Reference is too long (maximum is 10
// characters)". Off, up to 255 are accepted [I]. References are unique either
// way (see referenceTaken).
func contactReferenceMax(q Quirks) int {
	if q.ContactReferenceMax10 {
		return 10
	}
	return 255
}
