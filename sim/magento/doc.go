// Package magentosim is an in-memory Magento 2 shop running the Byte8_Client and
// Byte8_SageAccounting modules, faithful to their wire protocol (the shared
// reference magento-wire.md; section numbers below refer to it), quirks included.
//
// A Shop holds the module's configuration (tenant, api key, Ledger base URL, the
// pending pairing code), customers, products, invoices and credit memos, the
// byte8_event_outbox table and the byte8_entity_sync_state mirror. It behaves
// like the real modules on both sides of the wire:
//
//   - Observers (CreateInvoice, PayInvoice, UpsertCustomer, UpsertProduct,
//     CreateCreditMemo) enqueue the §1.3 events through Enqueue, which stores the
//     exact PHP json_encode body, deduplicates on the idempotency key whatever the
//     row's status, and writes a pending sync-state row that never overwrites a
//     terminal one (§1.2).
//   - DrainOnce and Run are the drain cron (§1.4): batches of 50 due rows, a
//     fresh outbound JWT per attempt, 2xx succeeded, 4xx dead-lettered at once,
//     everything else (5xx, 3xx — redirects are never followed —, network errors)
//     retried on the backoff ladder until the 10th failure. Requeue, RequeueAll
//     and GC are the operator commands and the GC cron (§1.5, §1.6).
//   - Handler serves /rest/V1/byte8/… and /rest/<store>/V1/byte8/… (§4–§6): ping,
//     payment-methods, the canonical invoice, customer, credit memo, payment and
//     product documents, the sync-state callback and anonymous pairing, with
//     Magento's inbound JWT check and jti replay cache (§3.5) and its REST error
//     envelopes (§7.2).
//   - Disconnect notifies Ledger and forgets the credentials but keeps the base
//     URL (§2.3); SetDown simulates an outage.
//
// Seed generates deterministic demo and test data from a math/rand/v2 source,
// with invoice amounts consistent to the penny. The /__sim/ routes expose
// inspection and operator actions over HTTP for the dev stack; tests should
// prefer the Go methods. The shop's clock, cron interval and backoff ladder come
// from Config, so tests can run the whole retry schedule without sleeping.
package magentosim
