package sagesim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// Contact is a Sage contact (customer or vendor) as the API returns it.
type Contact struct {
	ID                        string         `json:"id"`
	DisplayedAs               string         `json:"displayed_as"`
	Path                      string         `json:"$path"`
	CreatedAt                 time.Time      `json:"created_at"`
	UpdatedAt                 time.Time      `json:"updated_at"`
	DeletedAt                 *time.Time     `json:"deleted_at"`
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
	ID                 string `json:"id"`
	DisplayedAs        string `json:"displayed_as"`
	Name               string `json:"name"`
	JobTitle           string `json:"job_title"`
	Telephone          string `json:"telephone"`
	Mobile             string `json:"mobile"`
	Email              string `json:"email"`
	Fax                string `json:"fax"`
	IsMainContact      bool   `json:"is_main_contact"`
	ContactPersonTypes []Base `json:"contact_person_types"`
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
	DefaultCurrencyID           *string             `json:"default_currency_id"` // ignored under §28
	CreditLimit                 *money.Amount       `json:"credit_limit"`
	CreditDays                  *int                `json:"credit_days"`
	DefaultSalesLedgerAccountID *string             `json:"default_sales_ledger_account_id"`
	DefaultSalesTaxRateID       *string             `json:"default_sales_tax_rate_id"`
	MainAddress                 *addressInput       `json:"main_address"`
	DeliveryAddress             *addressInput       `json:"delivery_address"`
	MainContactPerson           *contactPersonInput `json:"main_contact_person"`
}

type contactPersonInput struct {
	Name                 string   `json:"name"`
	JobTitle             string   `json:"job_title"`
	Telephone            string   `json:"telephone"`
	Mobile               string   `json:"mobile"`
	Email                string   `json:"email"`
	Fax                  string   `json:"fax"`
	ContactPersonTypeIDs []string `json:"contact_person_type_ids"`
}

var contactTypeNames = map[string]string{"CUSTOMER": "Customer", "VENDOR": "Supplier"}

// Contacts returns a business's contacts in creation order, soft-deleted ones
// included (their DeletedAt is set). An unknown business gives nil.
func (s *Server) Contacts(businessID string) []Contact {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.businesses[businessID]
	if !ok {
		return nil
	}
	out := make([]Contact, 0, len(b.contactOrder))
	for _, id := range b.contactOrder {
		out = append(out, *b.contacts[id])
	}
	return out
}

// validateContactLocked checks in against Sage's rules; existing is the contact
// being updated (nil on create). s.mu must be held.
func (s *Server) validateContactLocked(b *business, in *contactInput, existing *Contact, q Quirks) []APIError {
	var errs []APIError
	if existing == nil || in.Name != nil {
		switch name := strings.TrimSpace(str(in.Name)); {
		case name == "":
			errs = append(errs, required("name"))
		case tooLong(name, 100):
			errs = append(errs, apiErr(CodeRecordInvalid, "Name is too long (maximum is 100 characters)", "name"))
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
			errs = append(errs, apiErr(CodeRecordInvalid, fmt.Sprintf("Reference is too long (maximum is %d characters)", limit), "reference"))
		case ref != "" && referenceTaken(b, ref, existing, q):
			errs = append(errs, apiErr(CodeRecordInvalid, "Reference has already been taken", "reference"))
		}
	}
	if cur := contactCurrencyID(q, in); cur != nil {
		source := "currency_id"
		if in.CurrencyID == nil || *in.CurrencyID == "" {
			source = "default_currency_id"
		}
		if _, ok := currencyByID(*cur); !ok {
			errs = append(errs, apiErr(CodeRecordInvalid, "Couldn't find currency.", source))
		}
		errs = append(errs, checkContactCurrencyChange(q, existing, cur)...)
	}
	if id := str(in.DefaultSalesLedgerAccountID); id != "" {
		if _, ok := b.ledgerAccount(id); !ok {
			errs = append(errs, apiErr(CodeRecordNotFound, "Couldn't find record.", "default_sales_ledger_account_id"))
		}
	}
	if id := str(in.DefaultSalesTaxRateID); id != "" {
		if _, ok := taxRateByID(id); !ok {
			errs = append(errs, apiErr(CodeRecordInvalid, "Couldn't find tax rate.", "default_sales_tax_rate_id"))
		}
	}
	if tooLong(str(in.Notes), 4000) {
		errs = append(errs, apiErr(CodeRecordInvalid, "Notes is too long (maximum is 4000 characters)", "notes"))
	}
	if tooLong(str(in.TaxNumber), 255) {
		errs = append(errs, apiErr(CodeRecordInvalid, "Tax number is too long (maximum is 255 characters)", "tax_number"))
	}
	if p := in.MainContactPerson; p != nil && tooLong(p.Email, 100) {
		errs = append(errs, apiErr(CodeRecordInvalid, "Email is too long (maximum is 100 characters)", "main_contact_person.email"))
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
	setStr := func(dst *string, p *string) {
		if p != nil {
			*dst = *p
		}
	}
	setStr(&c.TaxNumber, in.TaxNumber)
	setStr(&c.Notes, in.Notes)
	setStr(&c.Locale, in.Locale)
	setStr(&c.SourceGUID, in.SourceGUID)
	if cur := contactCurrencyID(q, in); cur != nil {
		c.Currency, _ = currencyByID(*cur)
	}
	if in.CreditLimit != nil {
		c.CreditLimit = *in.CreditLimit
	}
	if in.CreditDays != nil {
		c.CreditDays = *in.CreditDays
	}
	if id := str(in.DefaultSalesLedgerAccountID); id != "" {
		l, _ := b.ledgerAccount(id)
		base := l.base()
		c.DefaultSalesLedgerAccount = &base
	}
	if id := str(in.DefaultSalesTaxRateID); id != "" {
		t, _ := taxRateByID(id)
		c.DefaultSalesTaxRate = t.base()
	}
	if in.MainAddress != nil {
		c.MainAddress = in.MainAddress.toAddress(s.newID(), "SALES", true)
	}
	if in.DeliveryAddress != nil {
		c.DeliveryAddress = in.DeliveryAddress.toAddress(s.newID(), "DELIVERY", false)
	}
	if p := in.MainContactPerson; p != nil {
		cp := &ContactPerson{
			ID: s.newID(), DisplayedAs: p.Name, Name: p.Name, JobTitle: p.JobTitle, Telephone: p.Telephone,
			Mobile: p.Mobile, Email: p.Email, Fax: p.Fax, IsMainContact: true,
		}
		for _, t := range p.ContactPersonTypeIDs {
			cp.ContactPersonTypes = append(cp.ContactPersonTypes, Base{ID: t, DisplayedAs: t, Path: "/contact_person_types/" + t})
		}
		c.MainContactPerson = cp
		c.Email = p.Email
	}
	c.DisplayedAs = c.Name
	if c.Reference != "" {
		c.DisplayedAs = fmt.Sprintf("%s (%s)", c.Name, c.Reference)
	}
	c.GBBased = c.MainAddress == nil || c.MainAddress.Country == nil || c.MainAddress.Country.ID == "GB"
	c.UpdatedAt = now
}

func (s *Server) createContact(r *http.Request, call *apiCall) response {
	var in contactInput
	if bad := decodeRoot(r, "contact", &in); bad != nil {
		return *bad
	}
	q, _ := s.controls()
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	if resp, ok := s.replayLocked(b, "contact", in.IdempotencyID); ok {
		return resp
	}
	if errs := s.validateContactLocked(b, &in, nil, q); len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	id := s.newID()
	c := &Contact{
		ID: id, Path: "/contacts/" + id, CreatedAt: now, Currency: currencies[0],
		Deletable: true, IsActive: true,
	}
	s.applyContactLocked(b, c, &in, q, now)
	b.contacts[id] = c
	b.contactOrder = append(b.contactOrder, id)
	resp := jsonResponse(http.StatusCreated, c)
	s.rememberLocked(b, "contact", in.IdempotencyID, resp)
	return resp
}

func (s *Server) updateContact(r *http.Request, call *apiCall) response {
	var in contactInput
	if bad := decodeRoot(r, "contact", &in); bad != nil {
		return *bad
	}
	q, _ := s.controls()
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	if resp, ok := s.replayLocked(b, "contact", in.IdempotencyID); ok {
		return resp
	}
	c, ok := b.contacts[r.PathValue("id")]
	if !ok || c.DeletedAt != nil {
		// A soft-deleted contact cannot be updated (see quirk_soft_delete.go).
		return notFound()
	}
	if errs := s.validateContactLocked(b, &in, c, q); len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	updated := *c
	s.applyContactLocked(b, &updated, &in, q, now)
	b.contacts[c.ID] = &updated
	resp := jsonResponse(http.StatusOK, &updated)
	s.rememberLocked(b, "contact", in.IdempotencyID, resp)
	return resp
}

func (s *Server) getContact(r *http.Request, call *apiCall) response {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := call.business.contacts[r.PathValue("id")]
	if !ok || c.DeletedAt != nil {
		return notFound()
	}
	return jsonResponse(http.StatusOK, c)
}

func (s *Server) deleteContact(r *http.Request, call *apiCall) response {
	q, _ := s.controls()
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	c, ok := b.contacts[r.PathValue("id")]
	if !ok || c.DeletedAt != nil {
		return notFound()
	}
	if !c.Deletable {
		return errorResponse(http.StatusUnprocessableEntity,
			apiErr(CodeRecordInvalid, "This contact cannot be deleted because it has transactions.", ""))
	}
	deleteContactLocked(b, c, now, q)
	return response{status: http.StatusNoContent}
}

// listContacts supports search (name or reference, case-insensitive contains),
// email, contact_type_id and updated_or_created_since. Deleted contacts are not
// listed.
func (s *Server) listContacts(r *http.Request, call *apiCall) response {
	lp, bad := parseListParams(r)
	if bad != nil {
		return *bad
	}
	q := r.URL.Query()
	email, typ := strings.ToLower(q.Get("email")), q.Get("contact_type_id")
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := call.business
	items := make([]*Contact, 0, 16)
	for _, id := range b.contactOrder {
		c := b.contacts[id]
		if c.DeletedAt != nil || !lp.changedSince(c.CreatedAt, c.UpdatedAt) {
			continue
		}
		if lp.search != "" && !containsFold(c.Name, lp.search) && !containsFold(c.Reference, lp.search) {
			continue
		}
		if email != "" && strings.ToLower(c.Email) != email {
			continue
		}
		if typ != "" && !slices.ContainsFunc(c.ContactTypes, func(t Base) bool { return t.ID == typ }) {
			continue
		}
		items = append(items, c)
	}
	return listOf(r, "contacts", items, lp, func(c *Contact) any {
		return baseItem{ID: c.ID, DisplayedAs: c.DisplayedAs, Path: c.Path, Reference: c.Reference}
	})
}

// containsFold reports whether s contains the lower-case needle, ignoring case.
func containsFold(s, lowerNeedle string) bool {
	return strings.Contains(strings.ToLower(s), lowerNeedle)
}
