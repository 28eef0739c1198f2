// Package sagesim is an in-memory simulator of the Sage Business Cloud Accounting
// v3.1 API, faithful enough that Ledger talks to it by changing base URLs only.
//
// It serves Sage's OAuth endpoints (/oauth2/auth/central, /token, /revoke) and the
// API under /v3.1/ (businesses, contacts, sales invoices and the reference data the
// mapper caches), with Sage's error array, list envelope, X-Business selection,
// idempotency_id replay, and the catalogued quirks of DESIGN.md §3, each switchable
// through [Quirks]. Faults (5xx, commit-then-drop, latency, per-business rate
// limits) are seeded and reproducible, and everything can be inspected through the
// Go API or over HTTP under /__sim/.
//
// Time is simulated: the server reads [Config].Now plus an offset moved by
// [Server.Advance], so tests can expire codes and tokens without sleeping.
//
// Sage behaviour that is not confirmed by Sage's own documents is marked [I] in the
// README next to the choice made here.
package sagesim
