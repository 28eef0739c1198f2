package magento

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Issuers and audiences of the two directions.
const (
	IssuerMagento   = "magento"      // iss of Magento → Ledger tokens
	IssuerLedger    = "byte8-ledger" // iss of Ledger → Magento tokens
	AudienceLedger  = "byte8-ledger"
	AudienceMagento = "magento"
)

// Claims are the seven registered claims the module uses. Aud is a JSON string,
// never an array, and the times are JSON integers: Magento rejects anything else.
type Claims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Aud string `json:"aud"`
	Iat int64  `json:"iat"`
	Nbf int64  `json:"nbf"`
	Exp int64  `json:"exp"`
	Jti string `json:"jti"`
}

// header is exactly what Magento emits and requires.
const header = `{"alg":"HS256","typ":"JWT"}`

var b64 = base64.RawURLEncoding

// Sign returns the compact HS256 JWS of c under key (a subkey, never the master).
func Sign(key []byte, c Claims) (string, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signing := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString(body)
	return signing + "." + b64.EncodeToString(mac(key, signing)), nil
}

func mac(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// NewJTI returns a random UUID v4 string, the form Magento's IdentityGenerator uses.
func NewJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// MintOutbound is what Magento's Signer produces: iss=magento, aud=byte8-ledger,
// iat=nbf=now, exp=now+60, a fresh UUID jti. Ledger uses it only in simulators and tests.
func MintOutbound(apiKey, tenant string, now time.Time) (string, error) {
	t := now.Unix()
	return Sign(Subkey(apiKey, PurposeOutbound), Claims{
		Iss: IssuerMagento, Sub: tenant, Aud: AudienceLedger, Iat: t, Nbf: t, Exp: t + 60, Jti: NewJTI(),
	})
}

// MintInbound mints Ledger's token for a call into Magento. iat and nbf sit 30 s in
// the past because Magento checks nbf with zero tolerance; exp is now+240, keeping
// the lifetime (270 s) under Magento's 300 s ceiling. Every call gets a fresh jti.
func MintInbound(apiKey, tenant string, now time.Time) (string, error) {
	t := now.Unix()
	return Sign(Subkey(apiKey, PurposeInbound), Claims{
		Iss: IssuerLedger, Sub: tenant, Aud: AudienceMagento, Iat: t - 30, Nbf: t - 30, Exp: t + 240, Jti: NewJTI(),
	})
}

// Token is a parsed but not yet verified compact JWS.
type Token struct {
	Claims  Claims
	signing string
	sig     []byte
}

// ErrMalformed marks a token that is not a well-formed Byte8 JWT.
var ErrMalformed = errors.New("malformed token")

// Parse splits and decodes a compact JWS, checking the header (alg HS256, typ JWT)
// and the claim types (integers, string aud). It verifies nothing else; read
// Claims.Sub to pick the tenant's key, then call Verify. Padded base64 is accepted,
// as Magento's verifier accepts it.
func Parse(raw string) (*Token, error) {
	parts := strings.Split(strings.TrimSpace(raw), ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: want 3 segments, got %d", ErrMalformed, len(parts))
	}
	var seg [3][]byte
	for i, p := range parts {
		b, err := b64.DecodeString(strings.TrimRight(p, "="))
		if err != nil {
			return nil, fmt.Errorf("%w: segment %d is not base64url", ErrMalformed, i+1)
		}
		seg[i] = b
	}
	var h struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(seg[0], &h); err != nil || h.Alg != "HS256" || h.Typ != "JWT" {
		return nil, fmt.Errorf("%w: header must be alg HS256, typ JWT", ErrMalformed)
	}
	var raws map[string]json.RawMessage
	if err := json.Unmarshal(seg[1], &raws); err != nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object", ErrMalformed)
	}
	var c Claims
	for name, dst := range map[string]*string{"iss": &c.Iss, "sub": &c.Sub, "aud": &c.Aud, "jti": &c.Jti} {
		if v, ok := raws[name]; ok && json.Unmarshal(v, dst) != nil {
			return nil, fmt.Errorf("%w: claim %s must be a string", ErrMalformed, name)
		}
	}
	for name, dst := range map[string]*int64{"iat": &c.Iat, "nbf": &c.Nbf, "exp": &c.Exp} {
		v, ok := raws[name]
		if !ok {
			return nil, fmt.Errorf("%w: claim %s is missing", ErrMalformed, name)
		}
		if json.Unmarshal(v, dst) != nil {
			return nil, fmt.Errorf("%w: claim %s must be an integer", ErrMalformed, name)
		}
	}
	return &Token{Claims: c, signing: parts[0] + "." + parts[1], sig: seg[2]}, nil
}

// SignatureValid reports whether the token was signed with key, in constant time.
func (t *Token) SignatureValid(key []byte) bool {
	return hmac.Equal(t.sig, mac(key, t.signing))
}

// VerifyError says why a token was refused. Callers answer 401 whatever the reason;
// the reason is for logs.
type VerifyError struct{ Reason string }

func (e *VerifyError) Error() string { return "token refused: " + e.Reason }

// MaxTokenLifetime is the longest a token may live (exp − iat): Magento's own
// ceiling, which Ledger enforces too.
const MaxTokenLifetime = 300 * time.Second

// Leeway is the clock skew Ledger tolerates on Magento's tokens.
const Leeway = 30 * time.Second

// VerifyOutbound checks a Magento → Ledger token as Ledger must:
// signature under the outbound subkey, iss, aud, sub == tenant, exp/nbf/iat with
// Leeway, a lifetime of at most 300 s and a non-empty jti. Replay is the caller's
// job (it owns the cache). apiKey is the tenant's master secret.
func VerifyOutbound(t *Token, apiKey, tenant string, now time.Time) error {
	c := t.Claims
	lw := int64(Leeway / time.Second)
	n := now.Unix()
	switch {
	case !t.SignatureValid(Subkey(apiKey, PurposeOutbound)):
		return &VerifyError{"signature does not match the tenant's outbound key"}
	case c.Iss != IssuerMagento:
		return &VerifyError{fmt.Sprintf("iss is %q, want %q", c.Iss, IssuerMagento)}
	case c.Aud != AudienceLedger:
		return &VerifyError{fmt.Sprintf("aud is %q, want %q", c.Aud, AudienceLedger)}
	case c.Sub != tenant:
		return &VerifyError{fmt.Sprintf("sub %q does not match tenant %q", c.Sub, tenant)}
	case c.Jti == "":
		return &VerifyError{"jti is empty"}
	case c.Exp <= n-lw:
		return &VerifyError{"token expired"}
	case c.Nbf > n+lw:
		return &VerifyError{"token not valid yet (nbf)"}
	case c.Iat > n+lw:
		return &VerifyError{"token issued in the future (iat)"}
	case lifetimeOver(c, uint64(MaxTokenLifetime/time.Second)):
		return &VerifyError{"token lifetime exceeds 300 s"}
	}
	return nil
}

// lifetimeOver reports whether exp-iat exceeds max seconds. exp-iat in int64
// overflows for an iat far in the past and an exp far in the future, which
// would pass a token that never expires.
func lifetimeOver(c Claims, max uint64) bool {
	return c.Exp > c.Iat && uint64(c.Exp)-uint64(c.Iat) > max
}

// VerifyInbound checks a Ledger → Magento token exactly as Magento's Verifier does
// once a request has reached it: signature under the inbound subkey, iss, aud, sub
// equal to the stored tenant, iat <= now+30, nbf <= now with no tolerance, exp > now
// and a lifetime of at most 300 s. Replay (Magento's jti cache) is the caller's job.
func VerifyInbound(t *Token, apiKey, tenant string, now time.Time) error {
	c := t.Claims
	n := now.Unix()
	switch {
	case !t.SignatureValid(Subkey(apiKey, PurposeInbound)):
		return &VerifyError{"signature does not match the inbound key"}
	case c.Iss != IssuerLedger || c.Aud != AudienceMagento:
		return &VerifyError{"iss/aud are not byte8-ledger/magento"}
	case c.Sub != tenant:
		return &VerifyError{"sub is not the stored tenant"}
	case c.Jti == "":
		return &VerifyError{"jti is empty"}
	case c.Iat > n+30:
		return &VerifyError{"iat in the future"}
	case c.Nbf > n:
		return &VerifyError{"nbf in the future"}
	case c.Exp <= n:
		return &VerifyError{"token expired"}
	case lifetimeOver(c, uint64(MaxTokenLifetime/time.Second)):
		return &VerifyError{"token lifetime exceeds 300 s"}
	}
	return nil
}
