package sagesim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// newID returns a 32-hex GUID, the form of every Sage record id. Ids come from the
// seeded generator so a sequential run gives the same ids every time.
func (s *Server) newID() string {
	s.idMu.Lock()
	a, b := s.idRand.Uint64(), s.idRand.Uint64()
	s.idMu.Unlock()
	return fmt.Sprintf("%016x%016x", a, b)
}

// newUUID returns a hyphenated UUID-shaped id, the form of requested_by_id.
func (s *Server) newUUID() string {
	h := s.newID()
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// secret returns n random bytes as hex from crypto/rand: tokens and codes must not
// be guessable from the seed.
func secret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
