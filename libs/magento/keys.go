package magento

import (
	"crypto/hkdf"
	"crypto/sha256"
	"strings"
)

// HKDF info strings of the Byte8 module. Changing either breaks every paired shop.
const (
	// PurposeOutbound signs Magento → Ledger tokens (Magento signs, Ledger verifies).
	PurposeOutbound = "byte8-magento-outbound-v1"
	// PurposeInbound signs Ledger → Magento tokens (Ledger signs, Magento verifies).
	PurposeInbound = "byte8-magento-inbound-v1"
)

// Subkey derives the 32-byte HS256 key for purpose from the trimmed master api key,
// as PHP's hash_hkdf('sha256', $master, 32, $info, ”) does (empty salt).
func Subkey(apiKey, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(strings.TrimSpace(apiKey)), nil, purpose, 32)
	if err != nil {
		// Only possible for a key length beyond 255×32 bytes; 32 is constant.
		panic("magento: hkdf: " + err.Error())
	}
	return k
}
