// Package statecallback is Ledger's statecallback service: it mirrors every
// terminal sync result (RESULTS stream, subjects ledger.result.>) back into the
// shop's byte8_entity_sync_state table, over the Magento REST callback
// (POST /rest/V1/byte8/sync-state) or, for receivers that are not
// the PHP module, the gRPC ledger.v1.SyncStateService; the binding chooses.
//
// Rules, in the order a result meets them:
//
//   - Only entity types Magento mirrors (invoice, creditmemo, customer, product)
//     with a positive magento_entity_id are sent; anything else would be a 400,
//     so it is acknowledged and logged at debug.
//   - Batched per shop, sized to the work. Results are grouped by tenant; a
//     shop's batch starts when Config.BatchSize results wait or its oldest
//     has waited Config.BatchLinger, so a stream of results goes a linger's
//     worth at a time and a backlog in full batches. Each shop has at most
//     Config.PerShop batches and calls in flight and all shops together at
//     most Config.Workers batches, so a busy or slow shop never holds up the
//     others. A batch holds at most one result per entity: the newest; older
//     results of the same entity that were waiting are stale and
//     acknowledged unsent. Over gRPC a batch is one PushSyncState call; over
//     HTTP it is one POST per row, up to PerShop at once (the rows are
//     different entities, so their order does not matter).
//   - Newest wins, across retries, restarts and replicas. Callbacks overwrite
//     the row, so the service keeps a callback mark per entity in Postgres (the
//     finished_at of the newest result delivered). Each batch is one
//     transaction on a connection of its own (store.CallbackLocker): it takes
//     a transaction-level advisory lock per entity (pg_try_advisory_xact_lock,
//     never waited for: an entity another replica holds is retried shortly)
//     and reads the marks, in one round trip; stays open while the shop is
//     called; then writes the marks of the stored results and commits, in one
//     round trip, which releases the locks only once the marks are visible.
//     Under the lock a result older than the mark is acknowledged unsent, so
//     no replica can send an older result after a newer one was stored, nor
//     two results for one entity at once. Inside one process an entity is in
//     at most one batch at a time. A crash at any point ends the session and
//     rolls the transaction back, freeing the locks: before the send nothing
//     was sent or marked; after the send and before the commit the rows are
//     in the shop unmarked and the redelivered results are sent again (the
//     same bodies); after the commit and before the acknowledgements they
//     equal their marks and are sent again, harmlessly.
//   - Nothing is dropped. A shop that is down, a 5xx, a timeout and Magento's
//     "Could not upsert" 400 (a database failure) are retried with a capped
//     exponential back-off; auth drift (a 401 confirmed by a failing ping)
//     flips the binding to token_revoked and parks the shop's results. Those
//     retries are held (bus.Outcome.Hold): never dead-lettered, re-queued when
//     their delivery budget runs out. Only a plain 400 (Magento refusing the
//     body) is dead-lettered, and the dead letter can be replayed. JetStream
//     itself never gives up on a result (the consumer has no MaxDeliver; the
//     budget is bus.Settle's), so a delivery no replica settled comes back;
//     at shutdown everything a replica holds is handed back at once.
//   - A token_revoked shop is not called: its results are parked every
//     ParkDelay without a call, and the shop is pinged at most once per
//     ParkDelay to notice a restored key. Re-pairing sets the binding active,
//     and the parked results go out at their next redelivery, within ParkDelay.
//
// Delivery goes through a Transport (HTTPTransport, GRPCTransport); one that
// also implements BatchTransport gets whole batches. Transports report
// failures as *DeliveryError so the retry rules stay in one place.
package statecallback
