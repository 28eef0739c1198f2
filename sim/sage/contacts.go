package sagesim

import (
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

// ContactPerson is a contact's main contact person; the contact's email lives
// here on input.
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
	IdempotencyID               string              `json:"idempotency_id"`
	Name                        *string             `json:"name"`
	ContactTypeIDs              *[]string           `json:"contact_type_ids"`
	Reference                   *string             `json:"reference"`
	TaxNumber                   *string             `json:"tax_number"`
	Notes                       *string             `json:"notes"`
	Locale                      *string             `json:"locale"`
	SourceGUID                  *string             `json:"source_guid"`
	CurrencyID                  *string             `json:"currency_id"`
	DefaultCurrencyID           *string             `json:"default_currency_id"` // see quirk_default_currency.go
	CreditLimit                 *money.Amount       `json:"credit_limit"`
	CreditDays                  *int                `json:"credit_days"`
	DefaultSalesLedgerAccountID *string             `json:"default_sales_ledger_account_id"`
	DefaultSalesTaxRateID       *string             `json:"default_sales_tax_rate_id"`
	MainAddress                 *addressInput       `json:"main_address"`
	DeliveryAddress             *addressInput       `json:"delivery_address"`
	MainContactPerson           *contactPersonInput `json:"main_contact_person"`
}

type contactPersonInput struct {
	PersonDetails
	ContactPersonTypeIDs []string `json:"contact_person_type_ids"`
}

var contactTypeNames = map[string]string{"CUSTOMER": "Customer", "VENDOR": "Supplier"}

// Contacts returns a business's contacts in creation order, soft-deleted ones
// included (their DeletedAt is set). An unknown business gives nil.
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

// writeContact is POST /contacts and PUT /contacts/{id}, which changes only the
// fields it sends. A soft-deleted contact cannot be updated (see
// quirk_soft_delete.go).
func (s *Server) writeContact(update bool) apiHandler {
	return func(r *http.Request, call *apiCall) response {
		var in contactInput
		return s.write(r, call, "contact", into("contact", &in, &in.IdempotencyID), func(b *business, q Quirks, now time.Time) response {
			var prev *Contact
			if update {
				var ok bool
				if prev, ok = b.contacts.live(r.PathValue("id")); !ok {
					return notFound()
				}
			}
			if errs := s.validateContactLocked(b, &in, prev, q); len(errs) > 0 {
				return errorResponse(http.StatusUnprocessableEntity, errs...)
			}
			c, status := &Contact{Currency: currencies[0], Deletable: true, IsActive: true}, http.StatusCreated
			if prev != nil {
				c, status = prev, http.StatusOK
			} else {
				c.Record = s.newRecord("contacts", now)
			}
			s.applyContactLocked(b, c, &in, q, now)
			b.contacts.put(c, nil)
			return jsonResponse(status, c)
		})
	}
}

// deleteContact is DELETE /contacts/{id} (204); a contact with transactions
// cannot be deleted [I].
func (s *Server) deleteContact() apiHandler {
	return contactKind.change(s, func(_ *http.Request, b *business, c *Contact, now time.Time) response {
		if !c.Deletable {
			return errorResponse(http.StatusUnprocessableEntity,
				apiErr(CodeRecordInvalid, "This contact cannot be deleted because it has transactions.", ""))
		}
		q, _ := s.controls()
		deleteContactLocked(b, c, now, q)
		return response{status: http.StatusNoContent}
	})
}

// validateContactLocked checks in against Sage's rules; existing is the contact
// being updated (nil on create). s.mu must be held.
func (s *Server) validateContactLocked(b *business, in *contactInput, existing *Contact, q Quirks) []APIError {
	var errs problems
	if existing == nil || in.Name != nil {
		if name := strings.TrimSpace(str(in.Name)); name == "" {
			errs = append(errs, required("name"))
		} else {
			errs = append(errs, maxLength(name, 100, "name")...)
		}
	}
	if existing == nil || in.ContactTypeIDs != nil {
		if in.ContactTypeIDs == nil || len(*in.ContactTypeIDs) == 0 {
			errs = append(errs, required("contact_type_ids"))
		} else {
			for _, t := range *in.ContactTypeIDs {
				if _, ok := contactTypeNames[t]; !ok {
					errs = append(errs, apiErr(CodeRecordInvalid, fmt.Sprintf("Couldn't find contact type '%s'.", t), "contact_type_ids"))
				}
			}
		}
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
	if cur := contactCurrencyID(q, in); cur != nil {
		source := "currency_id"
		if str(in.CurrencyID) == "" {
			source = "default_currency_id"
		}
		if _, ok := byID(currencies, *cur); !ok {
			errs = append(errs, apiErr(CodeRecordInvalid, "Couldn't find currency.", source))
		}
		errs = append(errs, checkContactCurrencyChange(q, existing, cur)...)
	}
	if _, ok := byID(b.ledgerAccounts, str(in.DefaultSalesLedgerAccountID)); !ok && str(in.DefaultSalesLedgerAccountID) != "" {
		errs = append(errs, apiErr(CodeRecordNotFound, "Couldn't find record.", "default_sales_ledger_account_id"))
	}
	if _, ok := byID(taxRates, str(in.DefaultSalesTaxRateID)); !ok && str(in.DefaultSalesTaxRateID) != "" {
		errs = append(errs, apiErr(CodeRecordInvalid, "Couldn't find tax rate.", "default_sales_tax_rate_id"))
	}
	errs = append(errs, maxLength(str(in.Notes), 4000, "notes")...)
	errs = append(errs, maxLength(str(in.TaxNumber), 255, "tax_number")...)
	if p := in.MainContactPerson; p != nil {
		errs = append(errs, maxLength(p.Email, 100, "main_contact_person.email")...)
	}
	return errs
}

// applyContactLocked copies the fields present in in onto c.
func (s *Server) applyContactLocked(b *business, c *Contact, in *contactInput, q Quirks, now time.Time) {
	if in.Name != nil {
		c.Name = strings.TrimSpace(*in.Name)
	}
	if in.ContactTypeIDs != nil {
		c.ContactTypes = nil
		for _, t := range *in.ContactTypeIDs {
			c.ContactTypes = append(c.ContactTypes, Base{ID: t, DisplayedAs: contactTypeNames[t], Path: "/contact_types/" + t})
		}
	}
	if in.Reference != nil {
		c.Reference = strings.TrimSpace(*in.Reference)
	}
	set(&c.TaxNumber, in.TaxNumber)
	set(&c.Notes, in.Notes)
	set(&c.Locale, in.Locale)
	set(&c.SourceGUID, in.SourceGUID)
	set(&c.CreditLimit, in.CreditLimit)
	set(&c.CreditDays, in.CreditDays)
	if cur := contactCurrencyID(q, in); cur != nil {
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
			c.MainContactPerson.ContactPersonTypes = append(c.MainContactPerson.ContactPersonTypes,
				Base{ID: t, DisplayedAs: t, Path: "/contact_person_types/" + t})
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
