// Package sagesim is an in-memory simulator of the Sage Business Cloud Accounting
// v3.1 API, faithful enough that Ledger talks to it by changing base URLs only.
//
// It serves Sage's OAuth endpoints (/oauth2/auth/central, /token, /revoke) and the
// API under /v3.1/: businesses, contacts, sales invoices and credit notes (with
// PUT and void), contact payments (receipts, refunds, payments on account) and
// contact allocations that move outstanding balances, products, services, and the
// reference data the mapper caches. It speaks Sage's error array and list
// envelope, selects businesses with X-Business, replays idempotency_id for seven
// simulated days, and reproduces the Sage behaviours that surprise a client,
// each switchable through [Quirks]. [Faults] holds Sage's limits (per business per
// minute, per app per day, concurrent requests) and seeded, reproducible faults
// (5xx on the API and the token endpoint, latency with jitter, connection reset,
// commit-then-drop); token expiry, revocation and a lead-business change are
// methods. Everything can be inspected through the Go API or over HTTP under
// /__sim/.
//
// Time is simulated: the server reads [Config].Now plus an offset moved by
// [Server.Advance], so tests can expire codes, tokens and idempotency records
// without sleeping.
//
// Sage behaviour that is not confirmed by Sage's own documents is marked [I] in the
// README next to the choice made here.
package sagesim
