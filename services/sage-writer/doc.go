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
// # One commit per delivery
//
// A delivery is one transaction (Delivery, a store.Unit from the writer's
// own pool): BEGIN travels in the round trip that starts the run and reads
// the links of all its operations (StartStageWithLinks; the tenant's writes
// are serialised, so that read sees what a read before each operation would),
// and COMMIT in the round trip of its conclusion. It reads the run's attempt
// history only when the start says it has earlier writer attempts. What the
// delivery does — its attempts, the links of the documents it creates, the
// digests of the bodies it PUTs — is kept in a store.Journal and written
// with the run's conclusion: FinishRunWith when it succeeded or failed for
// good (then, and only then, the result is published), NoteRunErrorWith when
// it will be retried. The start's row lock on the run is held meanwhile (a
// second delivery of the same run waits for the first to conclude), and a
// connection of the writer's units pool, never of the shared pool that token
// refreshes need. A crash, or a failed conclusion, before that commit rolls
// the start back too (the run keeps the mapper's attempt count) and is safe
// at every point:
//
//   - a POST answered but its link not recorded: Sage has the document and
//     Ledger does not know it. The write's message was not acknowledged, so
//     JetStream delivers it again within WRITER_ACK_WAIT (the tenant's next
//     write waits for it: one in flight per tenant); that delivery POSTs the
//     same body with the same deterministic idempotency_id, and Sage answers
//     with the document it created (for 7 days: reference/sage-v3.1.md §4.8;
//     sim/sage's write.go replays the remembered answer the same way), which
//     is then linked. This is the window the writer always had between a POST
//     and its link ("Sage has it but Ledger does not know"), widened from one
//     statement to one write.
//   - a PUT answered but its digest not recorded: the next delivery finds the
//     old digest and sends the same PUT (same idempotency_id within the run),
//     which changes nothing.
//   - attempts not recorded: the history misses them; nothing depends on
//     them except the two cases below, which are written at once.
//   - an ambiguous create (5xx, lost answer) is written at once, with
//     everything journaled before it and the run's start, committing the
//     delivery's transaction (a checkpoint; what follows commits on its own):
//     it is what makes a later delivery look the document up before POSTing,
//     and that delivery may come after the idempotency replay lapsed (a write
//     held for days by a revoked binding, a dead letter replayed later).
//   - the last allowed delivery (WRITER_MAX_DELIVER) checkpoints each link as
//     soon as its document exists: no redelivery follows a crash in it, and
//     the operator's replay may come after the 7 days.
//
// What remains wider than before: a crash after a create, then a redelivery
// that is held (revoked binding, inactive business) for more than 7 days
// before it POSTs again, would create the document twice; before, the same
// needed the crash to fall between the POST and its link. And a receipt that
// settles a document (settles_key) created but not linked is not POSTed again
// when the settled document has nothing outstanding any more, so its link is
// never made (no duplicate; the receipt is normally the write's last
// operation, so its window is the conclusion's commit, as before).
//
// OAuth tokens are refreshed ahead of expiry under the store's cross-process
// per-binding lock (libs/sage/lifecycle), idle bindings get a keep-alive
// refresh, and [Service.Revoke] (lifecycle.Revoke for other services)
// disconnects a binding.
//
// README.md describes the flow, the classification table, the retry schedule,
// the rate budget and the configuration.
package sagewriter
