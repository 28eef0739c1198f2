package quirks

import (
	"testing"

	"github.com/ledgersync/ledger/libs/magento"
)

func TestAddressesAlwaysFillsDelivery(t *testing.T) {
	t.Parallel()
	bill := &magento.Address{Kind: "billing", City: "Leeds"}
	ship := &magento.Address{Kind: "shipping", City: "York"}
	cases := []struct {
		name                string
		billing, shipping   *magento.Address
		wantMain, wantDeliv *magento.Address
	}{
		{"both", bill, ship, bill, ship},
		{"virtual order: delivery is billing", bill, nil, bill, bill},
		{"no billing: shipping stands in", nil, ship, ship, ship},
		{"neither", nil, nil, nil, nil},
	}
	for _, c := range cases {
		m, d := Addresses(c.billing, c.shipping)
		if m != c.wantMain || d != c.wantDeliv {
			t.Errorf("%s: got (%v, %v)", c.name, m, d)
		}
	}
}

func TestContactAddressesTakesFirstOfEachKind(t *testing.T) {
	t.Parallel()
	c := magento.Contact{Addresses: []magento.Address{
		{Kind: "shipping", City: "York"}, {Kind: "billing", City: "Leeds"}, {Kind: "billing", City: "Hull"},
	}}
	b, s := ContactAddresses(c)
	if b == nil || b.City != "Leeds" || s == nil || s.City != "York" {
		t.Fatalf("got billing %v shipping %v", b, s)
	}
	if b, s := ContactAddresses(magento.Contact{}); b != nil || s != nil {
		t.Fatalf("empty contact: got %v %v", b, s)
	}
}
