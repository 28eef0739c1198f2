package sagesim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Server is a simulated Sage Business Cloud Accounting v3.1. It is safe for
// concurrent use. Create it with [New] and serve [Server.Handler].
type Server struct {
	// Now is base plus offset, which only grows (Advance); ids come from
	// idRand. tick guards both.
	base   func() time.Time
	tick   sync.Mutex
	offset time.Duration
	idRand *mathrand.Rand
	// mu guards users, businesses (and their documents), codes and tokens;
	// functions named …Locked run with it held (for writing if they change
	// anything).
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
	laxSchema bool
	faultRand *mathrand.Rand

	app     appLimiter
	calls   callLog
	handler http.Handler
}

// defaultUser is the user created at start, whom authorizations without the
// simulator-only sim_user parameter act as.
const defaultUser = "default"

// New builds a simulator from cfg. Out-of-range fault values are clamped (use
// [Server.SetFaults] to get an error for them instead).
func New(cfg Config) *Server {
	s := &Server{
		base:          cfg.Now,
		idRand:        mathrand.New(mathrand.NewPCG(cfg.Seed, 0x5a6e5a6e)),
		faultRand:     mathrand.New(mathrand.NewPCG(cfg.Seed, 0xfa017fa0)),
		clients:       map[string]Client{},
		template:      cfg.Businesses,
		users:         map[string]*user{},
		businesses:    map[string]*business{},
		codes:         map[string]*authCode{},
		accessTokens:  map[string]*grant{},
		refreshTokens: map[string]*grant{},
		quirks:        valueOr(cfg.Quirks, DefaultQuirks()),
		laxSchema:     cfg.LaxSchema,
		calls:         callLog{counts: map[Call]int{}},
	}
	s.faults, _ = cfg.Faults.clamped()
	if s.base == nil {
		s.base = time.Now
	}
	if !cfg.NoDefaultClient {
		s.clients[DefaultClientID] = Client{ID: DefaultClientID, Secret: DefaultClientSecret}
	}
	for _, c := range cfg.Clients {
		s.clients[c.ID] = c
	}
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
	s.businessRoutes(mux)
	s.contactRoutes(mux)
	invoiceKind.routes(s, mux)
	creditNoteKind.routes(s, mux)
	productKind.routes(s, mux)
	serviceKind.routes(s, mux)
	paymentKind.routes(s, mux, s.createContactPayment, nil, s.deleteContactPayment())
	allocationKind.routes(s, mux, s.createContactAllocation, nil, deleteSettling(s, allocationKind, nil))
	s.referenceRoutes(mux)
	// Anything else under /v3.1/ is an unknown path or an unsupported verb: Sage
	// answers 404 with its error array.
	mux.HandleFunc("/v3.1/", s.api(func(*http.Request, *apiCall) *response { return notFound() }))
	s.inspectRoutes(mux)
	return s.recordCalls(mux)
}

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

// StrictSchema reports whether POST and PUT bodies are checked against Sage's
// published request schema (schema.go): on unless Config.LaxSchema.
func (s *Server) StrictSchema() bool {
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	return !s.laxSchema
}

// SetStrictSchema switches strict mode at runtime.
func (s *Server) SetStrictSchema(on bool) {
	s.ctlMu.Lock()
	s.laxSchema = !on
	s.ctlMu.Unlock()
}

// Reset forgets every document, idempotency record, call count and rate window
// and restarts document numbering. Users, businesses, reference data, clients,
// tokens, quirks, faults and the clock are kept, so a connected client stays
// connected.
func (s *Server) Reset() {
	s.mu.Lock()
	for _, b := range s.businesses {
		b.documents = documents{}
	}
	s.mu.Unlock()
	s.app.mu.Lock()
	s.app.window, s.app.day, s.app.count = nil, time.Time{}, 0
	s.app.mu.Unlock()
	s.calls.mu.Lock()
	s.calls.counts = map[Call]int{}
	s.calls.mu.Unlock()
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

// Now returns the simulated time.
func (s *Server) Now() time.Time {
	s.tick.Lock()
	off := s.offset
	s.tick.Unlock()
	return s.base().Add(off).UTC()
}

// Advance moves the simulated clock forward by d (negative d is ignored), so tests
// can expire authorization codes (60 s), access tokens (300 s), refresh tokens
// (31 days), idempotency records (7 days) and rate windows without sleeping.
func (s *Server) Advance(d time.Duration) {
	s.tick.Lock()
	s.offset += max(d, 0)
	s.tick.Unlock()
}

// stamp is the simulated time truncated to seconds, the precision Sage shows in
// created_at and updated_at.
func (s *Server) stamp() time.Time { return s.Now().Truncate(time.Second) }

// newID returns a 32-hex GUID, the form of every Sage record id. Ids come from the
// seeded generator so a sequential run gives the same ids every time.
func (s *Server) newID() string {
	s.tick.Lock()
	a, b := s.idRand.Uint64(), s.idRand.Uint64()
	s.tick.Unlock()
	return fmt.Sprintf("%016x%016x", a, b)
}

// secret returns n random bytes as hex from crypto/rand: tokens and codes must not
// be guessable from the seed.
func secret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
