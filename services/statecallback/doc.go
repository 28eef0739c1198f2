// Package statecallback is Ledger's statecallback service: it mirrors every
// terminal sync result (RESULTS stream, subjects ledger.result.>) back into the
// shop's byte8_entity_sync_state table with POST /rest/V1/byte8/sync-state
// (wire §5.1), so the Magento admin grid shows synced, skipped or failed.
//
// Rules, in the order a result meets them:
//
//   - Only entity types Magento mirrors (invoice, creditmemo, customer, product)
//     with a positive magento_entity_id are sent; anything else would be a 400,
//     so it is acknowledged and logged at debug.
//   - Newest wins. Callbacks overwrite the row, so a result older than the last
//     one delivered for the same entity (its callback mark in Postgres) is
//     acknowledged without being sent. Results for one entity are serialised
//     inside a process by a keyed mutex, so check, send and mark are one step.
//   - Nothing is dropped. A shop that is down, a 5xx, a timeout, and the
//     "Could not upsert" 400 that is really a database failure are retried with
//     a capped exponential back-off; auth drift (401 confirmed by a failing ping)
//     flips the binding to token_revoked and parks the result with a long delay
//     until the shop is re-paired. Only a plain 400 (Magento refusing the body)
//     is dead-lettered, and the dead letter can be replayed.
//
// Delivery goes through a Transport. HTTPTransport speaks the Magento REST wire;
// other transports (gRPC, batching) plug in behind the same interface and
// report failures as *DeliveryError so the retry rules stay in one place.
//
// Remaining race: the keyed mutex only serialises within one process. Two
// replicas each holding a different result for the same entity can both read
// the same mark and send; the older may land last. JetStream delivers in order
// and results for one entity are minutes apart in practice, so this needs two
// replicas plus a redelivery interleaving. Closing it fully needs a
// cross-process lock on the entity (e.g. a Postgres advisory lock held around
// check-send-mark), left for the gRPC/batching work.
package statecallback
