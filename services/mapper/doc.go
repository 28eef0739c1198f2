// Package mapper is Ledger's mapper service: it consumes accepted Magento events
// from the OUTBOX stream, fetches the canonical documents from the shop
// (GET /rest/V1/byte8/{invoice,payment,creditmemo,customer,product}/:id with a
// fresh inbound JWT), applies the tenant's policy (libs/policy, snapshotted onto
// the run) and the Sage quirk rules of package quirks, and publishes one
// SageWrite per run to the SAGE stream for the sage-writer — or finishes the run
// skipped with a stable reason.
//
// Builder is the mapping: canonical documents → SageWrite, exact decimals, a
// deterministic idempotency_id per operation, every dependency (contact,
// invoice, receipt) ensured through the same operations whichever event comes
// first, and the reconciliation rule that keeps every Sage total equal to
// Magento's grand_total. Its Directory remembers, in entity_xref, the contact
// references it claimed (quirk 23 collisions) and the contact each invoice was
// booked on (B2C consolidation; payments and credit notes follow it).
//
// Service is the consumer around it. Every outcome of a message is decided in
// one place: success acks after the SageWrite's PubAck; a policy skip finishes
// the run skipped; transient Magento or store trouble is retried with
// exponential back-off; auth drift and unusable bindings are held
// (bus.Outcome.Hold: never dead-lettered); everything permanent finishes the
// run as failed, publishes its result and dead-letters the original for replay.
//
// See README.md for the events, skip reasons, error codes, quirk rules and the
// reconciliation rule.
package mapper
