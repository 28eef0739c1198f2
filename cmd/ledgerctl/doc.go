// Command ledgerctl is the operator CLI for Ledger. It speaks only the gRPC
// AdminService (proto/ledger/v1), so it works against any deployment the
// operator can reach: create tenants, pair Magento shops, start the Sage
// authorization, inspect and retry sync runs, backfill Magento's sync-state
// mirror, relink cross-references, edit the sync policy, refresh Sage reference
// data, and list and replay dead letters. Long operations (backfill, replay)
// stream progress and draw a progress bar on stderr. README.md has the full
// command reference.
//
// Exit status: 0 on success, 1 when the service refused or failed the
// request, 2 for a usage error (unknown command, missing or bad flag).
package main
