// Package store is Ledger's Postgres state (pgx v5): embedded goose migrations
// applied at start, and the queries every service shares — tenants and bindings,
// sealed OAuth tokens, webhook dedup keys, sync runs and attempts, entity_xref and
// the newest-result marks of the sync-state mirror.
//
// Services declare the few methods they use as interfaces of their own; *Store
// satisfies them. Secrets are sealed and opened here, so callers handle plaintext
// and the database never does.
package store
