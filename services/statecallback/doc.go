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
//   - Batched per shop. Results are grouped by tenant; each shop has at most
//     Config.PerShop batches in flight (its concurrent calls) and all shops
//     together at most Config.Workers, so a busy or slow shop never holds up
//     the others. A batch holds at most one result per entity: the newest;
//     older results of the same entity that were waiting are stale and
//     acknowledged unsent. Over gRPC a batch is one PushSyncState call; over
//     HTTP it is one POST per row in turn.
//   - Newest wins, across retries, restarts and replicas. Callbacks overwrite
//     the row, so the service keeps a callback mark per entity in Postgres (the
//     finished_at of the newest result delivered). Check, send and mark run
//     under a Postgres session advisory lock per entity (pg_try_advisory_lock,
//     one connection per batch, never waited for: an entity another replica
//     holds is retried shortly). Under the lock a result older than the mark is
//     acknowledged unsent and the mark of a stored result is written before
//     the lock is released, so no replica can send an older result after a
//     newer one was stored, nor two results for one entity at once. Inside one
//     process an entity is in at most one batch at a time.
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
