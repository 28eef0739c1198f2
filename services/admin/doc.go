// Package admin is Ledger's operator surface: the gRPC
// AdminService behind ledgerctl, and an HTTP listener for the operator console
// (console.go: login, tenants, connect, policy, runs, dead letters), the Sage
// OAuth start/callback, /healthz, /readyz and /metrics.
//
// # Authentication
//
// Every AdminService call needs the metadata "authorization: Bearer
// <ADMIN_TOKEN>" (compared in constant time); the gRPC health service is open
// so orchestrators can probe it, reflection is not. The console (and
// /oauth/sage/start) takes a session started at /login with the same token,
// kept in Postgres behind an HttpOnly, SameSite=Strict cookie, with a CSRF
// token on every POST; scripts send the token in an Authorization header
// instead. With LEDGER_ENV=dev a ?token= once starts a session.
// The Sage callback is public: its single-use, 10-minute state is the
// credential. With LEDGER_ENV=dev and no ADMIN_TOKEN the service refuses to
// start unless ADMIN_INSECURE_DEV=true, which switches authentication off.
//
// # Magento pairing
//
// ConnectMagento generates a 256-bit api key (APIKeyPrefix + base64url), calls
// the shop's anonymous POST /rest/V1/byte8/setup/pair with the operator's
// pairing code forwarded verbatim (trimmed only: Magento hashes the exact
// string) and LEDGER_BASE_URL as ledger_base_url, then pings the shop with a
// signed request. Every attempt lands in pairing_attempts. A refused code is
// FailedPrecondition, a 400 from the shop InvalidArgument, an unreachable shop
// Unavailable. If the pair succeeds but the ping fails, the key is kept (the
// shop now holds it) and the binding stays pending. DisconnectMagento revokes
// the binding and forgets the key; entity_xref is kept.
//
// # Runs, backfill, dead letters
//
// These publish to JetStream and need WithJetStream. RetryRuns resets a
// finished run (store.ResetRun) and publishes its OutboxEvent, rebuilt from the
// run row, to OUTBOX again with Nats-Msg-Id "retry:<run>:<nanos>": the sync is
// redone idempotently and the new terminal result re-fires the sync-state
// callback. BackfillSyncState walks a tenant's succeeded runs in keyset order
// and publishes their SyncResults to RESULTS ("backfill:<run>"), saving a
// cursor per batch (resumable) and pacing itself by the callback marks the shop
// confirms. ReplayDeadLetters republishes dead letters to their original
// subjects and deletes each only after the republish was acknowledged.
//
// # Sage OAuth
//
// StartSageConnect (or GET /oauth/sage/start) returns Sage's authorization URL
// with a fresh state. The callback exchanges the code, stores the tokens
// (sealed), reads the lead business, caches its reference data under the kinds
// RefLedgerAccounts (sales-visible), RefTaxRates and RefBankAccounts (each a
// JSON array of the list's $items with attributes=all), fills the policy
// defaults that are still empty (default_ledger_account_id, zero_tax_rate_id,
// default_tax_rate_id, tax_rate_map), and marks the Sage binding active.
package admin
