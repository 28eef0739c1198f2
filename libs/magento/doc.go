// Package magento speaks the wire protocol of the Byte8 Magento modules
// (see docs/magento-wire.md in the shared reference): HKDF-derived HS256 keys, JWT
// minting and verification in both directions, the canonical document shapes the
// module serves under /rest/V1/byte8/…, the sync-state callback body, pairing, and a
// small REST client that signs every request with a fresh token.
//
// The master secret is the api key delivered at pairing. It is never used to sign:
// each direction has its own HKDF-SHA256 subkey (info strings PurposeOutbound and
// PurposeInbound, empty salt), exactly as PHP's hash_hkdf derives them.
package magento
