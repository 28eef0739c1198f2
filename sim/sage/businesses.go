package sagesim

import (
	"fmt"
	"net/http"
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

func (u *user) canAccess(businessID string) bool {
	for _, id := range u.businessIDs {
		if id == businessID {
			return true
		}
	}
	return false
}

// business holds one business's documents and reference data.
type business struct {
	info           Business
	ownerID        string
	contacts       map[string]*Contact
	contactOrder   []string
	invoices       map[string]*SalesInvoice
	invoiceOrder   []string
	invoiceNumber  int
	ledgerAccounts []LedgerAccount
	bankAccounts   []BankAccount
	idem           map[string]idemEntry
}

func (b *business) resetDocuments() {
	b.contacts = map[string]*Contact{}
	b.contactOrder = nil
	b.invoices = map[string]*SalesInvoice{}
	b.invoiceOrder = nil
	b.invoiceNumber = 0
	b.idem = map[string]idemEntry{}
}

// userLocked returns the user called name, creating it with businesses built from
// the template when it does not exist. first marks the default user, which takes
// the configured business ids. s.mu must be held for writing.
func (s *Server) userLocked(name string, first bool) *user {
	if u, ok := s.users[name]; ok {
		return u
	}
	u := &user{id: s.newUUID(), name: name}
	now := s.stamp()
	for i, bc := range s.template {
		id := bc.ID
		if !first || id == "" {
			id = s.newID()
		}
		bname := bc.Name
		if bname == "" {
			bname = "Ledger Demo Ltd"
			if i > 0 {
				bname = fmt.Sprintf("Ledger Demo %d Ltd", i+1)
			}
		}
		b := &business{
			ownerID: u.id,
			info: Business{
				ID: id, DisplayedAs: bname, Path: "/businesses/" + id, Name: bname,
				CountryOfRegistration: Base{ID: "GB", DisplayedAs: "United Kingdom (GB)", Path: "/countries/GB"},
				Subscriptions:         []Subscription{{ID: "ACCOUNTING", DisplayedAs: "Accounting", Active: true}},
				CreatedAt:             now, UpdatedAt: now,
			},
		}
		b.resetDocuments()
		b.ledgerAccounts = s.seedLedgerAccounts(now)
		b.bankAccounts = s.seedBankAccounts(now, b.ledgerAccounts)
		s.businesses[id] = b
		u.businessIDs = append(u.businessIDs, id)
		if bc.Lead && u.leadID == "" {
			u.leadID = id
		}
	}
	if u.leadID == "" {
		u.leadID = u.businessIDs[0]
	}
	s.users[name] = u
	return u
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

func (s *Server) getLeadBusiness(r *http.Request, c *apiCall) response {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return jsonResponse(http.StatusOK, s.businesses[c.user.leadID].info)
}

func (s *Server) getBusiness(r *http.Request, c *apiCall) response {
	id := r.PathValue("id")
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !c.user.canAccess(id) {
		return notFound()
	}
	return jsonResponse(http.StatusOK, s.businesses[id].info)
}
