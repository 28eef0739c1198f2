// Package sagewriter is Ledger's sage-writer service: it consumes the mapper's
// SageWrite messages from the SAGE stream and makes each of their operations
// exist in Sage Business Cloud Accounting v3.1 exactly once.
//
// For every operation it checks entity_xref first (a known document needs no
// call), otherwise POSTs the body with its deterministic idempotency_id and the
// ids of earlier operations bound in, and records the new link and the attempt.
// An ambiguous failure (5xx, lost answer) is resolved by looking the document up
// by reference before anything is created again. Every failure goes through
// [Classify], the one function that decides between retrying, pausing the
// tenant (revoked tokens, inactive binding, changed lead business) and
// dead-lettering, with DESIGN §3 error classes and stable codes.
//
// The writer owns the binding's Sage OAuth tokens at run time: [TokenSource]
// refreshes them under the store's cross-process lock, committing the rotated
// refresh token before the new access token is used. Writes to one business are
// serialised within the process.
//
// README.md describes the flow, the classification table, the retry schedule and
// the configuration.
package sagewriter
