// Package mapper is Ledger's mapper service: it consumes accepted Magento events
// from the OUTBOX stream, fetches the canonical entity from the shop
// (GET /rest/V1/byte8/{invoice,customer}/:id with a fresh inbound JWT), applies
// the tenant's policy and the Sage quirk rules of package quirks, and publishes
// one SageWrite per run to the SAGE stream for the sage-writer.
//
// Builder is the pure part (canonical document → SageWrite, exact decimals, a
// deterministic idempotency_id per operation); Service is the consumer around
// it. Every outcome of a message is decided in one place: success acks after
// the SageWrite's PubAck; transient Magento or store trouble is retried with
// exponential back-off; auth drift and unusable bindings are held (retried every
// LongRetry, never dead-lettered); everything permanent finishes the run as
// failed, publishes its result and dead-letters the original for replay.
//
// See README.md for the events handled, the error table and the quirk rules.
package mapper
