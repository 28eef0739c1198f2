package sagesim

// deliveryAddress is quirk DeliveryAddressMirrorsBilling: a sales document
// without delivery_address gets a copy of its billing address (main_address),
// even when the contact has a delivery address of its own. Off, it takes the
// contact's delivery address (none if the contact has none).
func deliveryAddress(q Quirks, sent *addressInput, main *Address, contact *Contact) *Address {
	if sent != nil {
		return sent.toAddress("", "DELIVERY", false)
	}
	if q.DeliveryAddressMirrorsBilling {
		return main.clone()
	}
	return contact.DeliveryAddress.clone()
}
