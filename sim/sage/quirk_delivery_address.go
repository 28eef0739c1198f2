package sagesim

// Quirk §17 (B8): when a sales invoice omits delivery_address, Sage copies the
// billing address (main_address) into it, even when the contact has its own
// delivery address. With the quirk off the invoice takes the contact's delivery
// address (nil if it has none), which is what a naive client expects.
func deliveryAddress(q Quirks, sent *addressInput, main *Address, contact *Contact) *Address {
	if sent != nil {
		return sent.toAddress("", "DELIVERY", false)
	}
	if q.DeliveryAddressMirrorsBilling {
		return main.clone()
	}
	return contact.DeliveryAddress.clone()
}
