// Command ledgerctl is the operator CLI for Ledger. It speaks only the gRPC
// AdminService (proto/ledger/v1), so it works against any deployment the
// operator can reach: create tenants, pair Magento shops, start the Sage
// authorization and list sync runs. README.md has the full command reference.
//
// Exit status: 0 on success, 1 when the service refused or failed the
// request, 2 for a usage error (unknown command, missing or bad flag).
package main
