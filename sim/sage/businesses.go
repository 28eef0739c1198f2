package sagesim

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Business is a Sage business as GET /businesses/{id} shows it.
type Business struct {
	ID                    string         `json:"id"`
	DisplayedAs           string         `json:"displayed_as"`
	Path                  string         `json:"$path"`
	Name                  string         `json:"name"`
	CountryOfRegistration Base           `json:"country_of_registration"`
	Subscriptions         []Subscription `json:"subscriptions"`
	IsDemo                bool           `json:"is_demo"`
	CreatedAt             time.Time      `json:"created_at"`
	UpdatedAt             time.Time      `json:"updated_at"`
	// Lead is simulator-only information for /__sim/: whether this is the
	// owning user's lead business. Sage does not send it.
	Lead bool `json:"-"`
}

// Subscription is an entry of a business's subscriptions[]; id is one of START,
// MICRO, ACCOUNTS, ACCOUNTING_10 or ACCOUNTING (Plus).
type Subscription struct {
	ID          string `json:"id"`
	DisplayedAs string `json:"displayed_as"`
	Active      bool   `json:"active"`
}

// Base is Sage's reference to another record: id, displayed_as and $path.
type Base struct {
	ID          string `json:"id"`
	DisplayedAs string `json:"displayed_as"`
	Path        string `json:"$path,omitempty"`
}

// user is a Sage user: the identity behind a token and the businesses it reaches.
type user struct {
	id          string
	name        string
	businessIDs []string
	leadID      string
}

func (u *user) canAccess(businessID string) bool { return slices.Contains(u.businessIDs, businessID) }

// business holds one business's documents and reference data.
type business struct {
	info Business
	documents
	ledgerAccounts []LedgerAccount
	bankAccounts   []BankAccount
}

// documents are what Reset forgets: a business's documents, its payments on
// account and its idempotency records.
type documents struct {
	contacts    store[*Contact]
	invoices    store[*SalesInvoice]
	creditNotes store[*SalesCreditNote]
	payments    store[*ContactPayment]
	onAccount   map[string]*PaymentOnAccount
	allocations store[*ContactAllocation]
	products    store[*Product]
	services    store[*Service]
	idem        map[string]idemEntry
}

// ukBusiness reports whether b is registered in GB, where sales documents for
// customers abroad must be zero rated and name EU goods or services.
func (b *business) ukBusiness() bool { return b.info.CountryOfRegistration.ID == "GB" }

// userLocked returns the user called name, creating it with businesses built from
// the template when it does not exist. first marks the default user, which takes
// the configured business ids. s.mu must be held for writing.
func (s *Server) userLocked(name string, first bool) *user {
	if u, ok := s.users[name]; ok {
		return u
	}
	u := &user{id: s.newUUID(), name: name}
	for i, bc := range s.template {
		id := bc.ID
		if !first {
			id = ""
		}
		b := s.newBusinessLocked(u, id, bc, i)
		if bc.Lead && u.leadID == "" {
			u.leadID = b.info.ID
		}
	}
	if u.leadID == "" {
		u.leadID = u.businessIDs[0]
	}
	s.users[name] = u
	return u
}

// newBusinessLocked creates a business for u from bc (the i-th of the user's
// businesses) with a fresh chart of accounts. An empty id generates one. s.mu
// must be held for writing.
func (s *Server) newBusinessLocked(u *user, id string, bc BusinessConfig, i int) *business {
	now := s.stamp()
	if id == "" {
		id = s.newID()
	}
	bname := cmp.Or(bc.Name, "Ledger Demo Ltd")
	if bc.Name == "" && i > 0 {
		bname = fmt.Sprintf("Ledger Demo %d Ltd", i+1)
	}
	b := &business{info: Business{
		ID: id, DisplayedAs: bname, Path: "/businesses/" + id, Name: bname, CountryOfRegistration: *country(cmp.Or(bc.Country, "GB")),
		Subscriptions: []Subscription{{ID: "ACCOUNTING", DisplayedAs: "Accounting", Active: true}},
		CreatedAt:     now, UpdatedAt: now,
	}}
	b.ledgerAccounts = s.seedLedgerAccounts(now)
	b.bankAccounts = s.seedBankAccounts(now, b.ledgerAccounts)
	s.businesses[id] = b
	u.businessIDs = append(u.businessIDs, id)
	return b
}

// ChangeLeadBusiness is the "lead business changed" fault: the default user's
// next business (in creation order, wrapping around) becomes its lead, so
// requests without X-Business go there and X-Business echoes it. A user with a
// single business first gets a second one, as if it had been added in Sage. It
// returns the new lead business id.
func (s *Server) ChangeLeadBusiness() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[defaultUser]
	if len(u.businessIDs) == 1 {
		s.newBusinessLocked(u, "", BusinessConfig{}, len(u.businessIDs))
	}
	next := 0
	for i, id := range u.businessIDs {
		if id == u.leadID {
			next = (i + 1) % len(u.businessIDs)
		}
	}
	u.leadID = u.businessIDs[next]
	return u.leadID
}

// SetLeadBusiness makes id the lead business of the user who owns it.
func (s *Server) SetLeadBusiness(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.canAccess(id) {
			u.leadID = id
			return nil
		}
	}
	return fmt.Errorf("sagesim: no business %q", id)
}

// Businesses returns every business of every simulated user; Lead is set on each
// user's lead business.
func (s *Server) Businesses() []Business {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Business
	for _, u := range s.users {
		for _, id := range u.businessIDs {
			b := s.businesses[id].info
			b.Lead = id == u.leadID
			out = append(out, b)
		}
	}
	return out
}

func (s *Server) listBusinesses(r *http.Request, c *apiCall) response {
	s.mu.RLock()
	defer s.mu.RUnlock()
	items := make([]Business, 0, len(c.user.businessIDs))
	for _, id := range c.user.businessIDs {
		items = append(items, s.businesses[id].info)
	}
	// /businesses is unpaginated: Sage reports the largest int32 as page size.
	return jsonResponse(http.StatusOK, listEnvelope{
		Total: len(items), Page: 1, ItemsPerPage: 2147483647, Items: items,
	})
}

// getBusiness is GET /businesses/{id}, and GET /businesses/lead with lead.
func (s *Server) getBusiness(lead bool) apiHandler {
	return func(r *http.Request, c *apiCall) response {
		id := r.PathValue("id")
		if lead {
			id = c.user.leadID
		}
		s.mu.RLock()
		defer s.mu.RUnlock()
		if !c.user.canAccess(id) {
			return notFound()
		}
		return jsonResponse(http.StatusOK, s.businesses[id].info)
	}
}
