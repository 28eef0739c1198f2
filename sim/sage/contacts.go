package sagesim

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// Contact is a Sage contact (customer or vendor) as the API returns it.
type Contact struct {
	Record
	ContactTypes              []Base         `json:"contact_types"`
	Name                      string         `json:"name"`
	Reference                 string         `json:"reference"`
	DefaultSalesLedgerAccount *Base          `json:"default_sales_ledger_account"`
	DefaultSalesTaxRate       *Base          `json:"default_sales_tax_rate"`
	TaxNumber                 string         `json:"tax_number"`
	Notes                     string         `json:"notes"`
	Locale                    string         `json:"locale"`
	MainAddress               *Address       `json:"main_address"`
	DeliveryAddress           *Address       `json:"delivery_address"`
	MainContactPerson         *ContactPerson `json:"main_contact_person"`
	CreditLimit               money.Amount   `json:"credit_limit"`
	CreditDays                int            `json:"credit_days"`
	SourceGUID                string         `json:"source_guid"`
	Currency                  Base           `json:"currency"`
	Email                     string         `json:"email"`
	Balance                   money.Amount   `json:"balance"`
	Deletable                 bool           `json:"deletable"`
	IsActive                  bool           `json:"is_active"`
	System                    bool           `json:"system"`
	GDPRObfuscated            bool           `json:"gdpr_obfuscated"`
	GBBased                   bool           `json:"gb_based"`
}

// ContactPerson is a contact's main contact person, whose email is the
// contact's.
type ContactPerson struct {
	ID          string `json:"id"`
	DisplayedAs string `json:"displayed_as"`
	PersonDetails
	IsMainContact      bool   `json:"is_main_contact"`
	ContactPersonTypes []Base `json:"contact_person_types"`
}

// PersonDetails are how a contact person is reached, as sent and as shown.
type PersonDetails struct {
	Name      string `json:"name"`
	JobTitle  string `json:"job_title"`
	Telephone string `json:"telephone"`
	Mobile    string `json:"mobile"`
	Email     string `json:"email"`
	Fax       string `json:"fax"`
}

// IsCustomer reports whether the contact has the CUSTOMER type.
func (c *Contact) IsCustomer() bool {
	return slices.ContainsFunc(c.ContactTypes, func(b Base) bool { return b.ID == "CUSTOMER" })
}

type contactInput struct {
	IdempotencyID               string        `json:"idempotency_id"`
	Name                        *string       `json:"name"`
	ContactTypeIDs              *[]string     `json:"contact_type_ids"`
	Reference                   *string       `json:"reference"`
	TaxNumber                   *string       `json:"tax_number"`
	Notes                       *string       `json:"notes"`
	Locale                      *string       `json:"locale"`
	SourceGUID                  *string       `json:"source_guid"`
	CurrencyID                  *string       `json:"currency_id"`
	DefaultCurrencyID           *string       `json:"default_currency_id"` // see quirk_default_currency.go
	CreditLimit                 *money.Amount `json:"credit_limit"`
	CreditDays                  *int          `json:"credit_days"`
	DefaultSalesLedgerAccountID *string       `json:"default_sales_ledger_account_id"`
	DefaultSalesTaxRateID       *string       `json:"default_sales_tax_rate_id"`
	MainAddress                 *addressInput `json:"main_address"`
	DeliveryAddress             *addressInput `json:"delivery_address"`
	MainContactPerson           *struct {
		PersonDetails
		ContactPersonTypeIDs []string `json:"contact_person_type_ids"`
	} `json:"main_contact_person"`
}

var contactTypeNames = map[string]string{"CUSTOMER": "Customer", "VENDOR": "Supplier"}

// Contacts returns a business's contacts in creation order, deleted ones
// included (DeletedAt set); an unknown business gives nil. Invoices,
// CreditNotes, Payments, Allocations, Products and Services do the same.
func (s *Server) Contacts(businessID string) []Contact { return snapshot(s, businessID, contactKind) }

// contactKind lists contacts by search (name or reference, case-insensitive
// contains), email and contact_type_id. Deleted contacts are not listed.
var contactKind = &kind[*Contact]{
	root: "contact", resource: "contacts",
	store: func(b *business) *store[*Contact] { return &b.contacts },
	match: func(q url.Values, lp listParams) func(*Contact) bool {
		email, typ := strings.ToLower(q.Get("email")), q.Get("contact_type_id")
		return func(c *Contact) bool {
			return (lp.search == "" || containsFold(c.Name, lp.search) || containsFold(c.Reference, lp.search)) &&
				(email == "" || strings.ToLower(c.Email) == email) &&
				(typ == "" || slices.ContainsFunc(c.ContactTypes, func(t Base) bool { return t.ID == typ }))
		}
	},
	reference: func(c *Contact) string { return c.Reference },
}

// contactRoutes registers /contacts. A PUT changes only the fields it sends; a
// soft-deleted contact cannot be updated (quirk_soft_delete.go); a contact
// with transactions cannot be deleted [I].
func (s *Server) contactRoutes(mux *http.ServeMux) {
	write := func(update bool) apiHandler {
		return func(r *http.Request, call *apiCall) *response {
			var in contactInput
			return s.write(r, call, "contact", into("contact", &in, &in.IdempotencyID), func(b *business, q Quirks, now time.Time) *response {
				prev, ok := b.contacts.live(r.PathValue("id"))
				if update && !ok {
					return notFound()
				}
				if errs := validateContactLocked(b, &in, prev, q); len(errs) > 0 {
					return unprocessable(errs...)
				}
				c, status := prev, http.StatusOK
				if !update {
					c, status = &Contact{Record: s.newRecord("contacts", now), Currency: currencies[0], Deletable: true, IsActive: true}, http.StatusCreated
				}
				s.applyContact(b, c, &in, q, now)
				b.contacts.put(c, nil)
				return jsonResponse(status, c)
			})
		}
	}
	remove := contactKind.change(s, true, func(_ *http.Request, b *business, c *Contact, now time.Time) *response {
		if !c.Deletable {
			return unprocessable(
				apiErr(CodeRecordInvalid, "This contact cannot be deleted because it has transactions.", ""))
		}
		deleteContactLocked(b, c, now, s.Quirks())
		return &response{status: http.StatusNoContent}
	})
	contactKind.routes(s, mux, write(false), write(true), remove)
}

// validateContactLocked checks in; a PUT (existing not nil) needs only the
// fields it sends.
func validateContactLocked(b *business, in *contactInput, existing *Contact, q Quirks) []APIError {
	var errs problems
	name, types := strings.TrimSpace(str(in.Name)), valueOr(in.ContactTypeIDs, nil)
	errs.when(name == "" && (existing == nil || in.Name != nil), required("name"))
	errs = append(errs, maxLength(name, 100, "name")...)
	errs.when(len(types) == 0 && (existing == nil || in.ContactTypeIDs != nil), required("contact_type_ids"))
	for _, t := range types {
		errs.when(contactTypeNames[t] == "", apiErr(CodeRecordInvalid, fmt.Sprintf("Couldn't find contact type '%s'.", t), "contact_type_ids"))
	}
	if in.Reference != nil {
		ref := strings.TrimSpace(*in.Reference)
		switch limit := contactReferenceMax(q); {
		case tooLong(ref, limit):
			errs = append(errs, maxLength(ref, limit, "reference")...)
		case ref != "" && referenceTaken(b, ref, existing, q):
			errs = append(errs, apiErr(CodeRecordInvalid, "Reference has already been taken", "reference"))
		}
	}
	if cur, source := contactCurrencyID(q, in); cur != nil {
		lookup(&errs, currencies, cur, source, false, CodeRecordInvalid, "Couldn't find currency.")
		errs = append(errs, checkContactCurrencyChange(q, existing, cur)...)
	}
	ledgerAccountLocked(&errs, b, in.DefaultSalesLedgerAccountID, "default_sales_ledger_account_id", false, false)
	taxRateOf(&errs, in.DefaultSalesTaxRateID, "default_sales_tax_rate_id")
	errs = append(errs, maxLength(str(in.Notes), 4000, "notes")...)
	errs = append(errs, maxLength(str(in.TaxNumber), 255, "tax_number")...)
	if p := in.MainContactPerson; p != nil {
		// Sage's ContactPerson limits: 50, the e-mail 100.
		errs = append(errs, maxLength(p.Name, 50, "main_contact_person.name")...)
		errs = append(errs, maxLength(p.Telephone, 50, "main_contact_person.telephone")...)
		errs = append(errs, maxLength(p.Email, 100, "main_contact_person.email")...)
	}
	return errs
}

// applyContact copies the fields present in in onto c.
func (s *Server) applyContact(b *business, c *Contact, in *contactInput, q Quirks, now time.Time) {
	c.Name, c.Reference = strings.TrimSpace(valueOr(in.Name, c.Name)), strings.TrimSpace(valueOr(in.Reference, c.Reference))
	if in.ContactTypeIDs != nil {
		c.ContactTypes = nil
		for _, t := range *in.ContactTypeIDs {
			c.ContactTypes = append(c.ContactTypes, named("contact_types", contactTypeNames, t))
		}
	}
	set(&c.TaxNumber, in.TaxNumber)
	set(&c.Notes, in.Notes)
	set(&c.Locale, in.Locale)
	set(&c.SourceGUID, in.SourceGUID)
	set(&c.CreditLimit, in.CreditLimit)
	set(&c.CreditDays, in.CreditDays)
	if cur, _ := contactCurrencyID(q, in); cur != nil {
		c.Currency, _ = byID(currencies, *cur)
	}
	if l, ok := byID(b.ledgerAccounts, str(in.DefaultSalesLedgerAccountID)); ok {
		c.DefaultSalesLedgerAccount = new(l.ref())
	}
	if t, ok := byID(taxRates, str(in.DefaultSalesTaxRateID)); ok {
		c.DefaultSalesTaxRate = new(t.ref())
	}
	if in.MainAddress != nil {
		c.MainAddress = in.MainAddress.toAddress(s.newID(), "SALES", true)
	}
	if in.DeliveryAddress != nil {
		c.DeliveryAddress = in.DeliveryAddress.toAddress(s.newID(), "DELIVERY", false)
	}
	if p := in.MainContactPerson; p != nil {
		c.MainContactPerson = &ContactPerson{ID: s.newID(), DisplayedAs: p.Name, PersonDetails: p.PersonDetails, IsMainContact: true}
		for _, t := range p.ContactPersonTypeIDs {
			c.MainContactPerson.ContactPersonTypes = append(c.MainContactPerson.ContactPersonTypes, named("contact_person_types", nil, t))
		}
		c.Email = p.Email
	}
	c.DisplayedAs = c.Name
	if c.Reference != "" {
		c.DisplayedAs = fmt.Sprintf("%s (%s)", c.Name, c.Reference)
	}
	c.GBBased = c.MainAddress == nil || c.MainAddress.Country == nil || c.MainAddress.Country.ID == "GB"
	c.UpdatedAt = now
}

// Address is a postal address on a contact or a sales document.
type Address struct {
	ID            string `json:"id,omitempty"`
	DisplayedAs   string `json:"displayed_as,omitempty"`
	AddressLine1  string `json:"address_line_1"`
	AddressLine2  string `json:"address_line_2"`
	City          string `json:"city"`
	PostalCode    string `json:"postal_code"`
	Region        string `json:"region"`
	Country       *Base  `json:"country"`
	AddressType   *Base  `json:"address_type,omitempty"`
	Name          string `json:"name,omitempty"`
	IsMainAddress bool   `json:"is_main_address,omitempty"`
}

// addressInput is an address as POST/PUT bodies send it.
type addressInput struct {
	AddressLine1   string `json:"address_line_1"`
	AddressLine2   string `json:"address_line_2"`
	City           string `json:"city"`
	PostalCode     string `json:"postal_code"`
	CountryID      string `json:"country_id"`
	Region         string `json:"region"`
	AddressTypeID  string `json:"address_type_id"`
	Name           string `json:"name"`
	IsMainAddress  *bool  `json:"is_main_address"`
	CountryGroupID string `json:"country_group_id"`
}

// toAddress converts an input address; defaultType applies when address_type_id
// is empty. Sales documents' addresses have no id.
func (in *addressInput) toAddress(id, defaultType string, main bool) *Address {
	if in == nil {
		return nil
	}
	a := &Address{ID: id, AddressLine1: in.AddressLine1, AddressLine2: in.AddressLine2, City: in.City,
		PostalCode: in.PostalCode, Region: in.Region, Name: in.Name, IsMainAddress: valueOr(in.IsMainAddress, main)}
	if in.CountryID != "" {
		a.Country = new(named("countries", countryNames, in.CountryID))
	}
	if typ := cmp.Or(in.AddressTypeID, defaultType); typ != "" {
		a.AddressType = new(named("address_types", addressTypeNames, typ))
	}
	parts := []string{a.AddressLine1, a.AddressLine2, a.City, a.Region, a.PostalCode}
	a.DisplayedAs = strings.Join(slices.DeleteFunc(parts, func(p string) bool { return p == "" }), "\n")
	return a
}

// clone copies an address for use on another record (without its id).
func (a *Address) clone() *Address {
	if a == nil {
		return nil
	}
	c := *a
	c.ID = ""
	return &c
}
