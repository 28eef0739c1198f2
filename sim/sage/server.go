package sagesim

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Server is a simulated Sage Business Cloud Accounting v3.1. It is safe for
// concurrent use. Create it with [New] and serve [Server.Handler].
type Server struct {
	clock *clock

	idMu   sync.Mutex
	idRand *rand.Rand
	seed   uint64

	// mu guards users, businesses (and their documents), codes and tokens.
	mu            sync.RWMutex
	clients       map[string]Client
	template      []BusinessConfig
	users         map[string]*user
	businesses    map[string]*business
	codes         map[string]*authCode
	accessTokens  map[string]*grant
	refreshTokens map[string]*grant

	ctlMu     sync.Mutex
	quirks    Quirks
	faults    Faults
	faultRand *rand.Rand

	rate  *rateLimiter
	app   appLimiter
	calls *callLog

	handler http.Handler
}

// defaultUser is the name of the user created at start; authorizations without the
// simulator-only sim_user parameter act as this user.
const defaultUser = "default"

// New builds a simulator from cfg. Out-of-range fault values are clamped (use
// [Server.SetFaults] to get an error for them instead).
func New(cfg Config) *Server {
	s := &Server{
		clock:         newClock(cfg.Now),
		seed:          cfg.Seed,
		idRand:        rand.New(rand.NewPCG(cfg.Seed, 0x5a6e5a6e)),
		faultRand:     rand.New(rand.NewPCG(cfg.Seed, 0xfa017fa0)),
		clients:       map[string]Client{},
		users:         map[string]*user{},
		businesses:    map[string]*business{},
		codes:         map[string]*authCode{},
		accessTokens:  map[string]*grant{},
		refreshTokens: map[string]*grant{},
		quirks:        DefaultQuirks(),
		faults:        cfg.Faults.clamped(),
		rate:          newRateLimiter(),
		calls:         newCallLog(),
	}
	if cfg.Quirks != nil {
		s.quirks = *cfg.Quirks
	}
	if !cfg.NoDefaultClient {
		s.clients[DefaultClientID] = Client{ID: DefaultClientID, Secret: DefaultClientSecret}
	}
	for _, c := range cfg.Clients {
		s.clients[c.ID] = c
	}
	s.template = cfg.Businesses
	if len(s.template) == 0 {
		s.template = []BusinessConfig{{Name: "Ledger Demo Ltd", Lead: true}}
	}
	s.mu.Lock()
	s.userLocked(defaultUser, true)
	s.mu.Unlock()
	s.handler = s.routes()
	return s
}

// Handler returns the HTTP handler serving Sage's OAuth paths, /v3.1/ and /__sim/.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	mux.HandleFunc("GET /oauth2/auth/central", s.handleAuthorize)
	mux.HandleFunc("POST /token", s.handleToken)
	mux.HandleFunc("POST /revoke", s.handleRevoke)

	lead := routeOpts{noBusiness: true}
	mux.HandleFunc("GET /v3.1/businesses", s.api(s.listBusinesses, lead))
	mux.HandleFunc("GET /v3.1/businesses/lead", s.api(s.getBusiness(true), lead))
	mux.HandleFunc("GET /v3.1/businesses/{id}", s.api(s.getBusiness(false), lead))

	contactKind.routes(s, mux, s.writeContact(false), s.writeContact(true), s.deleteContact())
	invoiceKind.routes(s, mux)
	creditNoteKind.routes(s, mux)
	productKind.routes(s, mux)
	serviceKind.routes(s, mux)
	paymentKind.routes(s, mux, s.createContactPayment, nil, s.deleteContactPayment())
	allocationKind.routes(s, mux, s.createContactAllocation, nil, deleteSettling(s, allocationKind, nil))

	referenceRoutes(s, mux, "tax_rates", func(*business) []TaxRate { return taxRates }, matchTaxRate)
	referenceRoutes(s, mux, "ledger_accounts", func(b *business) []LedgerAccount { return b.ledgerAccounts }, matchLedgerAccount)
	referenceRoutes(s, mux, "bank_accounts", func(b *business) []BankAccount { return b.bankAccounts }, matchBankAccount)
	referenceRoutes(s, mux, "payment_methods", func(*business) []Base { return paymentMethods }, nil)
	referenceRoutes(s, mux, "currencies", func(*business) []Base { return currencies }, nil)
	mux.HandleFunc("GET /v3.1/financial_settings", s.api(s.getFinancialSettings, routeOpts{}))
	mux.HandleFunc("GET /v3.1/business_settings", s.api(s.getBusinessSettings, routeOpts{}))

	// Anything else under /v3.1/ is an unknown path or an unsupported verb: Sage
	// answers 404 with its error array.
	mux.HandleFunc("/v3.1/", s.api(func(*http.Request, *apiCall) response { return notFound() }, routeOpts{}))

	s.inspectRoutes(mux)
	return s.recordCalls(mux)
}

// controls returns the current quirks and faults.
func (s *Server) controls() (Quirks, Faults) {
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	return s.quirks, s.faults
}

// Quirks returns the quirks in force.
func (s *Server) Quirks() Quirks { q, _ := s.controls(); return q }

// SetQuirks switches quirks at runtime.
func (s *Server) SetQuirks(q Quirks) {
	s.ctlMu.Lock()
	s.quirks = q
	s.ctlMu.Unlock()
}

// Reset forgets every document (contacts, invoices, credit notes, payments,
// allocations, products, services), idempotency record, call count and rate
// window (per business and app-wide), and restarts document numbering. Users, businesses,
// reference data, clients, tokens, quirks, faults and the clock are kept, so a
// connected client stays connected.
func (s *Server) Reset() {
	s.mu.Lock()
	for _, b := range s.businesses {
		b.documents = documents{}
	}
	s.mu.Unlock()
	s.rate.reset()
	s.app.reset()
	s.calls.reset()
}

// LeadBusinessID returns the lead business of the default user, the one every
// authorization acts as unless it names another user.
func (s *Server) LeadBusinessID() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.users[defaultUser].leadID
}

// RevokeRefreshTokens revokes every refresh token, as if each user had
// disconnected the app: the next refresh answers invalid_grant.
func (s *Server) RevokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range s.refreshTokens {
		rt.revoked = true
	}
}

// ExpireAccessTokens makes every access token issued so far expired, so the next
// API call answers 401 and the client must refresh.
func (s *Server) ExpireAccessTokens() {
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, at := range s.accessTokens {
		at.expiresAt = now.Add(-time.Second)
	}
}
