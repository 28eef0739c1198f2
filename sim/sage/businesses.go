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
	Base
	Name                  string         `json:"name"`
	CountryOfRegistration Base           `json:"country_of_registration"`
	Subscriptions         []Subscription `json:"subscriptions"`
	IsDemo                bool           `json:"is_demo"`
	CreatedAt             time.Time      `json:"created_at"`
	UpdatedAt             time.Time      `json:"updated_at"`
	// Lead (simulator only, not sent) marks the owning user's lead business.
	Lead bool `json:"-"`
}

// Subscription is an entry of a business's subscriptions[]; id is one of START,
// MICRO, ACCOUNTS, ACCOUNTING_10 or ACCOUNTING (Plus).
type Subscription struct {
	ID          string `json:"id"`
	DisplayedAs string `json:"displayed_as"`
	Active      bool   `json:"active"`
}

// user is a Sage user: the identity behind a token and the businesses it reaches.
type user struct {
	id, leadID  string
	businessIDs []string
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

// userLocked returns the user called name, created on first use with
// businesses from the template; the default user (first) takes their ids.
func (s *Server) userLocked(name string, first bool) *user {
	if u, ok := s.users[name]; ok {
		return u
	}
	h := s.newID() // requested_by_id is UUID-shaped
	u := &user{id: h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]}
	for i, bc := range s.template {
		if !first {
			bc.ID = ""
		}
		if b := s.newBusinessLocked(u, bc, i); bc.Lead && u.leadID == "" {
			u.leadID = b.info.ID
		}
	}
	u.leadID = cmp.Or(u.leadID, u.businessIDs[0])
	s.users[name] = u
	return u
}

// newBusinessLocked creates u's i-th business from bc with a fresh chart of
// accounts.
func (s *Server) newBusinessLocked(u *user, bc BusinessConfig, i int) *business {
	now, id := s.stamp(), bc.ID
	if id == "" {
		id = s.newID()
	}
	name := cmp.Or(bc.Name, "Ledger Demo Ltd")
	if bc.Name == "" && i > 0 {
		name = fmt.Sprintf("Ledger Demo %d Ltd", i+1)
	}
	b := &business{info: Business{
		Base: link("businesses", id, name), Name: name, CountryOfRegistration: named("countries", countryNames, cmp.Or(bc.Country, "GB")),
		Subscriptions: []Subscription{{ID: "ACCOUNTING", DisplayedAs: "Accounting", Active: true}}, CreatedAt: now, UpdatedAt: now,
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
		s.newBusinessLocked(u, BusinessConfig{}, 1)
	}
	i := slices.Index(u.businessIDs, u.leadID)
	u.leadID = u.businessIDs[(i+1)%len(u.businessIDs)]
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

// Businesses returns every business of every simulated user, Lead set on each
// user's lead.
func (s *Server) Businesses() (out []Business) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, u := range s.users {
		for _, id := range u.businessIDs {
			b := s.businesses[id].info
			b.Lead = id == u.leadID
			out = append(out, b)
		}
	}
	return out
}

// businessRoutes registers GET /businesses (unpaginated: Sage reports the
// largest int32 as page size), /businesses/lead and /businesses/{id}; they
// neither check nor echo X-Business.
func (s *Server) businessRoutes(mux *http.ServeMux) {
	for _, route := range []string{"", "/lead", "/{id}"} {
		mux.HandleFunc("GET /v3.1/businesses"+route, s.apiFor(func(r *http.Request, c *apiCall) *response {
			s.mu.RLock()
			defer s.mu.RUnlock()
			switch id := r.PathValue("id"); {
			case route == "":
				items := make([]Business, 0, len(c.user.businessIDs))
				for _, id := range c.user.businessIDs {
					items = append(items, s.businesses[id].info)
				}
				return jsonResponse(http.StatusOK, listEnvelope{Total: len(items), Page: 1, ItemsPerPage: 2147483647, Items: items})
			case route == "/lead":
				return jsonResponse(http.StatusOK, s.businesses[c.user.leadID].info)
			case c.user.canAccess(id):
				return jsonResponse(http.StatusOK, s.businesses[id].info)
			}
			return notFound()
		}, true))
	}
}
