// Package store is Ledger's Postgres state (pgx v5): embedded goose migrations
// applied at start, and the queries every service shares — tenants and bindings,
// sealed OAuth tokens, webhook dedup keys, sync runs and attempts, entity_xref and
// the newest-result marks of the sync-state mirror.
//
// Services declare the few methods they use as interfaces of their own; *Store
// satisfies them. Secrets are sealed and opened here, so callers handle plaintext
// and the database never does.
//
// CacheTenants keeps the rows read for every event and changed rarely (tenants,
// bindings, Sage tokens, the versions of policy and reference data) in memory,
// forgotten when a change commits (LISTEN ledger_tenant_changed; tenantcache.go).
package store
