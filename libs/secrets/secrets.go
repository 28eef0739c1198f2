package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Sealer seals and opens values with a key ring.
type Sealer struct {
	current string
	keys    map[string]cipher.AEAD
}

// ParseKeyRing reads "id:base64key[,id:base64key…]"; the first key seals.
func ParseKeyRing(spec string) (*Sealer, error) {
	s := &Sealer{keys: map[string]cipher.AEAD{}}
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		id, enc, ok := strings.Cut(part, ":")
		if !ok || id == "" || strings.ContainsAny(id, ".") {
			return nil, fmt.Errorf("LEDGER_SECRET_KEY entry %d: want id:base64key (e.g. k1:%s)", i+1, exampleKey)
		}
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("LEDGER_SECRET_KEY entry %q: the key must be 32 bytes in standard base64 (generate one with: head -c32 /dev/urandom | base64)", id)
		}
		block, _ := aes.NewCipher(raw)
		aead, _ := cipher.NewGCM(block)
		if _, dup := s.keys[id]; dup {
			return nil, fmt.Errorf("LEDGER_SECRET_KEY: key id %q appears twice", id)
		}
		s.keys[id] = aead
		if i == 0 {
			s.current = id
		}
	}
	return s, nil
}

const exampleKey = "<32 random bytes, base64>"

// NewRandomKeyRing returns a ring with one fresh random key and its spec, for
// development stacks that have no configured key.
func NewRandomKeyRing() (*Sealer, string) {
	var k [32]byte
	_, _ = rand.Read(k[:])
	spec := "dev:" + base64.StdEncoding.EncodeToString(k[:])
	s, _ := ParseKeyRing(spec)
	return s, spec
}

// ErrUnknownKey means a value was sealed under a key no longer in the ring.
var ErrUnknownKey = errors.New("secrets: sealed with a key that is not in LEDGER_SECRET_KEY")

// Seal encrypts plain under the current key. Output: id "." nonce ciphertext.
func (s *Sealer) Seal(plain []byte) ([]byte, error) {
	aead := s.keys[s.current]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte(s.current+"."), nonce...)
	return aead.Seal(out, nonce, plain, []byte(s.current)), nil
}

// Open decrypts a value made by Seal with any key of the ring.
func (s *Sealer) Open(sealed []byte) ([]byte, error) {
	id, rest, ok := strings.Cut(string(sealed), ".")
	if !ok {
		return nil, errors.New("secrets: not a sealed value")
	}
	aead, ok := s.keys[id]
	if !ok {
		return nil, fmt.Errorf("%w (key id %q)", ErrUnknownKey, id)
	}
	ns := aead.NonceSize()
	if len(rest) < ns {
		return nil, errors.New("secrets: sealed value is truncated")
	}
	plain, err := aead.Open(nil, []byte(rest[:ns]), []byte(rest[ns:]), []byte(id))
	if err != nil {
		return nil, errors.New("secrets: sealed value does not authenticate (wrong key or tampered)")
	}
	return plain, nil
}

// SealString and OpenString are Seal and Open for strings.
func (s *Sealer) SealString(v string) ([]byte, error) { return s.Seal([]byte(v)) }

// OpenString opens a sealed string.
func (s *Sealer) OpenString(b []byte) (string, error) {
	p, err := s.Open(b)
	return string(p), err
}

// CurrentKeyID is the id of the sealing key.
func (s *Sealer) CurrentKeyID() string { return s.current }

// String is a secret string that never prints: fmt, slog and JSON show
// "[redacted]". Use Reveal to get the value.
type String string

// Reveal returns the secret value.
func (s String) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (String) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer.
func (String) GoString() string { return "[redacted]" }

// LogValue implements slog.LogValuer.
func (String) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalJSON keeps secrets out of JSON output.
func (String) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }
