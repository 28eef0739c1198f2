// Command ledgerctl is the operator CLI for Ledger. It speaks only the gRPC
// AdminService (proto/ledger/v1), so it works against any deployment the
// operator can reach: create tenants, pair Magento shops, start the Sage
// authorization and inspect it (oauth status), list runs by any filter of the
// dashboard's runs page and retry them by id or by filter, backfill Magento's
// sync-state mirror, relink cross-references, edit the sync policy, refresh
// Sage reference data, and list, replay and purge dead letters. Long
// operations (backfill, replay) stream progress and draw a progress bar on
// stderr. Every command prints text for people or, with --output json, the
// response as protojson. The command table (main.go) builds a cobra command
// tree, from which dispatch, every usage text and the bash, zsh and fish
// completion scripts come. README.md has the full command reference.
//
// Exit status: 0 on success, 1 when the service refused or failed the
// request (or part of it failed), 2 for a usage error (unknown command,
// missing or bad flag).
package main
