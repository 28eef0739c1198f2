package mapper

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ledgersync/ledger/libs/magento"
)

// TestContactPersonIsThePerson: a B2B contact is named after the company, and
// its main contact person after the person (not the company again); the
// e-mail travels on the person only, because Sage's postContacts has no
// top-level email.
func TestContactPersonIsThePerson(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("Bartholomew ", 6)
	cases := []struct {
		name                 string
		contact              magento.Contact
		wantName, wantPerson string
	}{
		{"company and person", magento.Contact{MagentoID: 1, Email: "ann@acme.example", FirstName: "Ann", LastName: "Smith", Company: "Acme Ltd"},
			"Acme Ltd", "Ann Smith"},
		{"person only", magento.Contact{MagentoID: 2, Email: "bob@example.com", FirstName: "Bob", LastName: "Jones"}, "Bob Jones", "Bob Jones"},
		{"company without a person", magento.Contact{MagentoID: 3, Email: "x@acme.example", Company: "Acme &amp; Sons"}, "Acme & Sons", "Acme & Sons"},
		// Sage's ContactPerson.name is at most 50 characters.
		{"long person", magento.Contact{MagentoID: 4, Email: "b@example.com", FirstName: long, Company: "Acme Ltd"},
			"Acme Ltd", strings.TrimSpace(long[:50])},
	}
	for _, tc := range cases {
		b := Builder{TenantID: "t1", Policy: goldenPolicy(), BaseCurrency: "GBP", Dir: &MemoryDirectory{}}
		w, err := b.Customer(t.Context(), tc.contact)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var body map[string]any
		if err := json.Unmarshal(w.Operations[0].Body, &body); err != nil {
			t.Fatal(err)
		}
		person, _ := body["main_contact_person"].(map[string]any)
		if body["name"] != tc.wantName || person["name"] != tc.wantPerson || person["email"] != tc.contact.Email {
			t.Errorf("%s: name %q, person %v", tc.name, body["name"], person)
		}
		if _, ok := body["email"]; ok {
			t.Errorf("%s: a top-level email is not in Sage's postContacts", tc.name)
		}
	}
}
