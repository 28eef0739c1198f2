package magento

import (
	"crypto/hkdf"
	"crypto/sha256"
	"strings"
	"sync"
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
//
// Every webhook verified and every sync-state call signed needs one, always
// the same for a shop, so derived keys are remembered (subkeys): the caller
// gets its own copy.
func Subkey(apiKey, purpose string) []byte {
	apiKey = strings.TrimSpace(apiKey)
	k, ok := subkeys.get(apiKey, purpose)
	if !ok {
		var err error
		k, err = hkdf.Key(sha256.New, []byte(apiKey), nil, purpose, 32)
		if err != nil {
			// Only possible for a key length beyond 255×32 bytes; 32 is constant.
			panic("magento: hkdf: " + err.Error())
		}
		subkeys.put(apiKey, purpose, k)
	}
	return append([]byte(nil), k...)
}

// maxSubkeys bounds the remembered keys: two per paired shop, and a shop
// re-paired leaves its old ones behind until the memory is cleared.
const maxSubkeys = 4096

// subkeys remembers derived keys by master key and purpose.
var subkeys = &subkeyMemo{m: map[[2]string][]byte{}}

type subkeyMemo struct {
	mu sync.RWMutex
	m  map[[2]string][]byte
}

func (s *subkeyMemo) get(apiKey, purpose string) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.m[[2]string{apiKey, purpose}]
	return k, ok
}

func (s *subkeyMemo) put(apiKey, purpose string, k []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSubkeys {
		clear(s.m) // a fleet beyond the bound derives again, as before
	}
	s.m[[2]string{apiKey, purpose}] = k
}
