// Package sagewriter is Ledger's sage-writer service: it consumes the mapper's
// SageWrite messages from the SAGE stream and makes each of their operations
// exist in Sage Business Cloud Accounting v3.1 exactly once.
//
// Every tenant has its own durable consumer with one write in flight
// (consumers.go): a tenant's writes are serialised across replicas, and the
// process's workers serve tenants round-robin, so one tenant's backlog never
// delays another. Every Sage call spends the rate budget (package budget):
// per-business pacing that a 429 slows further, the app's requests per day and
// concurrent requests.
//
// For every operation it checks entity_xref first (a known document needs no
// call), otherwise POSTs the body with its deterministic idempotency_id and the
// ids of earlier operations bound in, and records the new link and the attempt.
// An ambiguous failure (5xx, lost answer) is resolved by looking the document up
// by reference before anything is created again, on a later delivery too. What a
// write means (the order, the bindings, each request body, which writes are
// invalid) is libs/sagewrite's, the interpreter the mapper's tests run too; this
// package does its Sage and store side (executor in write.go). Every
// failure goes through [Classify], the one function that decides between
// retrying, holding the tenant's writes (revoked tokens, inactive binding,
// changed lead business, 429) and dead-lettering, with an error class and a
// stable code.
//
// OAuth tokens are refreshed ahead of expiry under the store's cross-process
// per-binding lock (libs/sage/lifecycle), idle bindings get a keep-alive
// refresh, and [Service.Revoke] (lifecycle.Revoke for other services)
// disconnects a binding.
//
// README.md describes the flow, the classification table, the retry schedule,
// the rate budget and the configuration.
package sagewriter
