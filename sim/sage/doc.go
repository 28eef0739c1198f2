// Package sagesim is an in-memory simulator of the Sage Business Cloud Accounting
// v3.1 API, faithful enough that Ledger talks to it by changing base URLs only.
//
// It serves Sage's OAuth endpoints and the API under /v3.1/: businesses,
// contacts, sales invoices and credit notes, contact payments and allocations
// that move outstanding balances, products, services and reference data, with
// Sage's error array, list envelope, X-Business selection and seven-day
// idempotency_id replay. The Sage behaviours that surprise a client are
// switchable [Quirks]; [Faults] holds Sage's limits and seeded, reproducible
// faults. Everything can be inspected through the Go API or under /__sim/.
//
// Time is simulated: [Config].Now plus an offset moved by [Server.Advance], so
// tests expire codes, tokens and idempotency records without sleeping.
//
// Behaviour Sage's own documents do not confirm is marked [I], in comments and
// in README.md next to the choice made here.
package sagesim
