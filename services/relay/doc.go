// Package relay is the outbox relay: it runs next to a Magento shop, claims the
// due rows of the Byte8 module's byte8_event_outbox exactly as the module's
// cron drain selects them, publishes each to Ledger's INGEST stream (the
// contract in docs/relay.md) and records each row's outcome with the columns
// and values the cron would, so the shop's admin, inspect and requeue keep
// working unchanged.
package relay
