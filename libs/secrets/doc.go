// Package secrets seals values at rest (api keys, OAuth tokens) with AES-256-GCM
// under LEDGER_SECRET_KEY, and keeps secrets out of logs.
//
// The key setting is a comma-separated ring of "id:base64key" entries (32-byte
// keys). The first entry seals; every entry opens, so a key is rotated by putting
// a new key first and re-sealing at leisure. A sealed value carries its key id.
package secrets
