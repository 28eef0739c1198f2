package quirks

import "github.com/ledgersync/ledger/libs/magento"

// Addresses is quirk 17: when a sales invoice (or contact) omits
// delivery_address, Sage silently copies the billing address into it, even when
// the customer has a delivery address of its own. So both are always sent: main
// is the billing address, delivery is the shipping address, and a virtual order
// (no shipping address) sends its billing address as delivery explicitly.
//
// When Magento gives no billing address the shipping address stands in for it.
// Both results are nil only when Magento sent neither.
func Addresses(billing, shipping *magento.Address) (main, delivery *magento.Address) {
	main, delivery = billing, shipping
	if main == nil {
		main = shipping
	}
	if delivery == nil {
		delivery = billing
	}
	return main, delivery
}

// ContactAddresses picks a contact's billing and shipping addresses from its
// address list (Magento lists the profile's default billing and shipping
// addresses): the first of each kind.
func ContactAddresses(c magento.Contact) (billing, shipping *magento.Address) {
	for i := range c.Addresses {
		a := &c.Addresses[i]
		switch a.Kind {
		case "billing":
			if billing == nil {
				billing = a
			}
		case "shipping":
			if shipping == nil {
				shipping = a
			}
		}
	}
	return billing, shipping
}
