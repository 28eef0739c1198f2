package mapper

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/policy"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/mapper/quirks"
)

// IdentityB2C is the contact identity of the B2C consolidation contact (one
// Sage contact per currency).
const IdentityB2C = "B2C"

// DefaultB2CContactName is the consolidation contact's name when the policy
// sets none.
const DefaultB2CContactName = "Online customers"

// Identity is the entity_xref key of a customer's Sage contacts (quirk 31:
// the currency is the xref's currency column): "M{id}" for a registered
// customer, "G:" + the full SHA-256 of the trimmed, lower-cased email for a
// guest. It never collides; the 10-character reference derived from it may,
// and is claimed separately.
func Identity(c magento.Contact) string {
	if !c.IsGuest() {
		return "M" + strconv.FormatInt(c.MagentoID, 10)
	}
	return "G:" + quirks.GuestHash(c.Email)
}

// contactChoice is the Sage contact a document is booked on.
type contactChoice struct {
	identity, reference, currency string
	consolidated                  bool
}

// refKey is the case-insensitive key of a reference claim (Sage compares
// references case-insensitively).
func refKey(ref string) string { return strings.ToUpper(ref) }

// chooseContact decides the contact of a document in currency. invoiceKey
// (the Magento invoice id, "" for none) makes the decision sticky: the first
// document of an invoice records it, and its payment and credit notes follow.
// grand and billingCountry drive B2C consolidation.
func (m *mapping) chooseContact(ctx context.Context, c magento.Contact, currency, invoiceKey string,
	grand money.Amount, billingCountry string) (contactChoice, error) {
	ch := contactChoice{currency: currency}
	// Every link the decision below may ask for, in one read.
	if err := m.b.Dir.Prefetch(ctx, m.contactKeys(c, currency, invoiceKey)); err != nil {
		return ch, storeTrouble(err)
	}
	if invoiceKey != "" {
		id, ref, ok, err := m.b.Dir.InvoiceContact(ctx, invoiceKey, currency)
		if err != nil {
			return ch, storeTrouble(err)
		}
		if ok {
			ch.identity, ch.reference, ch.consolidated = id, ref, id == IdentityB2C
			return ch, nil
		}
	}
	ch.identity = Identity(c)
	if m.consolidate(ctx, c, currency, grand, billingCountry, ch.identity) {
		ch.identity, ch.consolidated = IdentityB2C, true
	}
	var candidates []string
	if ch.consolidated {
		candidates = b2cCandidates(currency, m.b.BaseCurrency)
	} else {
		candidates = quirks.ReferenceCandidates(c.MagentoID, c.Email, currency, m.b.BaseCurrency)
	}
	ref, err := m.b.Dir.ClaimReference(ctx, ch.identity+"|"+currency, candidates)
	if errors.Is(err, errReferencesExhausted) {
		return ch, failf(ClassValidation, CodeReferenceCollision,
			"contact %s (%s): all %d candidate references %v are taken by other customers: relink one with `ledgerctl xref set`",
			ch.identity, currency, len(candidates), candidates)
	}
	if err != nil {
		return ch, storeTrouble(err)
	}
	ch.reference = ref
	m.q[quirks.NameContactReference] = true
	if invoiceKey != "" {
		if err := m.b.Dir.SetInvoiceContact(ctx, invoiceKey, currency, ch.identity, ch.reference); err != nil {
			return ch, storeTrouble(err)
		}
	}
	return ch, nil
}

// contactKeys are the links chooseContact may read for c in currency: the
// invoice's recorded contact, whether the guest has a contact of its own (the
// B2C rule), and the candidate references (its own and, for a guest the B2C
// rule may consolidate, the B2C contact's).
func (m *mapping) contactKeys(c magento.Contact, currency, invoiceKey string) []store.XrefKey {
	var keys []store.XrefKey
	if invoiceKey != "" {
		keys = append(keys, store.XrefKey{Kind: XrefInvoiceContact, MagentoKey: invoiceKey, Currency: currency})
	}
	refs := quirks.ReferenceCandidates(c.MagentoID, c.Email, currency, m.b.BaseCurrency)
	if m.b.Policy.B2C.Enabled && c.IsGuest() {
		keys = append(keys, store.XrefKey{Kind: XrefContact, MagentoKey: Identity(c), Currency: currency})
		refs = append(refs, b2cCandidates(currency, m.b.BaseCurrency)...)
	}
	for _, ref := range refs {
		keys = append(keys, store.XrefKey{Kind: XrefContactRef, MagentoKey: refKey(ref)})
	}
	return keys
}

// consolidate is the B2C rule: a guest order with no company, billed in the
// home country, at most the threshold, whose guest has no Sage contact of its
// own in the currency yet (repeat customers stay individual).
func (m *mapping) consolidate(ctx context.Context, c magento.Contact, currency string, grand money.Amount,
	billingCountry, identity string) bool {
	b2c := m.b.Policy.B2C
	if !b2c.Enabled || !c.IsGuest() || strings.TrimSpace(c.Company) != "" {
		return false
	}
	if quirks.CrossBorder(billingCountry, m.b.Policy.HomeCountry) {
		return false // a different VAT treatment: keep it on its own contact
	}
	if b2c.Threshold != nil && grand.Cmp(*b2c.Threshold) > 0 {
		return false
	}
	exists, err := m.b.Dir.ContactExists(ctx, identity, currency)
	return err == nil && !exists
}

func b2cCandidates(currency, base string) []string {
	suffix := ""
	if !strings.EqualFold(currency, base) {
		suffix = quirks.CurrencySuffix(currency)
	}
	out := []string{IdentityB2C + suffix}
	for n := 1; n < quirks.MaxReferenceCandidates; n++ {
		out = append(out, IdentityB2C+strconv.Itoa(n)+suffix)
	}
	return out
}

// contactOperation ensures the chosen contact, with the given addresses.
func (m *mapping) contactOperation(key string, c magento.Contact, ch contactChoice, billing, shipping *magento.Address) (*ledgerv1.SageOperation, error) {
	m.q[quirks.NameContactCurrency] = true
	m.q[quirks.NameContactVariant] = true
	xrefKey, currency := quirks.ContactVariant(ch.identity, ch.currency, m.b.BaseCurrency)
	var body SageContact
	if ch.consolidated {
		name := strings.TrimSpace(m.b.Policy.B2C.ContactName)
		if name == "" {
			name = DefaultB2CContactName
		}
		if !strings.EqualFold(currency, m.b.BaseCurrency) {
			name += " (" + currency + ")"
		}
		body = SageContact{Name: quirks.CleanText(name, MaxContactName), ContactTypeIDs: []string{"CUSTOMER"},
			Reference: ch.reference, CurrencyID: currency}
		// A home-country address keeps Sage's cross-border rules (zero rating and
		// one EU goods/services type, quirks 29 and 30) off
		// the shared contact; each invoice carries its own addresses.
		home := &SageAddress{AddressLine1: "Online customers", City: "-", CountryID: strings.ToUpper(m.b.Policy.HomeCountry)}
		body.MainAddress, body.DeliveryAddress = home, home
	} else {
		name := m.contactName(c)
		if name == "" {
			name = ch.reference
		}
		phone := c.Phone
		if phone == "" && billing != nil {
			phone = billing.Telephone
		}
		// The e-mail lives on the contact person only: Sage's postContacts has
		// no top-level email (its Contact.email is read-only).
		body = SageContact{
			Name: name, ContactTypeIDs: []string{"CUSTOMER"}, Reference: ch.reference, CurrencyID: currency,
			MainContactPerson: &SageContactPerson{Name: contactPersonName(c, name), Email: strings.TrimSpace(c.Email),
				Telephone: quirks.CleanText(phone, MaxContactPersonField), IsMainContact: true},
		}
		main, delivery := quirks.Addresses(billing, shipping)
		body.MainAddress, body.DeliveryAddress = sageAddress(main), sageAddress(delivery)
	}
	m.q[quirks.NameAddresses] = true
	return m.operation(key, ledgerv1.SageResource_SAGE_RESOURCE_CONTACT, "contact", XrefContact, xrefKey, currency,
		ch.reference, body)
}

// contactName follows the policy's customer_name_priority (company,
// full_name, email), cleaned like a description and cut to Sage's 100.
func (m *mapping) contactName(c magento.Contact) string {
	order := m.b.Policy.CustomerNamePriority
	if len(order) == 0 {
		order = policy.Default().CustomerNamePriority
	}
	for _, src := range order {
		var v string
		switch src {
		case policy.NameCompany:
			v = c.Company
		case policy.NameFullName:
			v = strings.TrimSpace(c.FirstName + " " + c.LastName)
		case policy.NameEmail:
			v = strings.TrimSpace(c.Email)
		}
		if v = quirks.CleanText(v, MaxContactName); v != "" {
			return v
		}
	}
	return ""
}

// contactPersonName is the main contact person's name: the person (first and
// last name) even when the contact is named after the company, else the
// contact's own name; cleaned and cut to Sage's 50.
func contactPersonName(c magento.Contact, contactName string) string {
	if v := quirks.CleanText(c.FirstName+" "+c.LastName, MaxContactPersonField); v != "" {
		return v
	}
	return quirks.CleanText(contactName, MaxContactPersonField)
}

// storeTrouble wraps a Directory failure as a retryable store error.
func storeTrouble(err error) error {
	return &retryable{class: ClassDatabase, code: CodeStoreUnavailable, err: err}
}
