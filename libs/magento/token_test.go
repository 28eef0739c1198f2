package magento

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

// HKDF-SHA256 vectors (empty salt) computed with PHP hash_hkdf, Python and Go; all agree.
const (
	vectorMaster   = "byte8_lk_raw_secret"
	vectorOutbound = "7d9da2d0582fd50518b2439628a4099d76728839d045b54dbb964e930c2fc872"
	vectorInbound  = "d17842b7e7dd30e2bd0c52048b18745582596de1aae88d501d6b0adde3fc4021"
	vectorToken    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJtYWdlbnRvIiwic3ViIjoidGVuYW50LTQyIiwiYXVkIjoiYnl0ZTgtbGVkZ2VyIiwiaWF0IjoxNzE0NDAwMDAwLCJuYmYiOjE3MTQ0MDAwMDAsImV4cCI6MTcxNDQwMDA2MCwianRpIjoiYWJjLWp0aSJ9.KPJfDyIa0Y4gUX2mrNnWjBA32n3-BG8wIAgmGEGVREc"
)

func TestSubkeyVectors(t *testing.T) {
	if got := hex.EncodeToString(Subkey(vectorMaster, PurposeOutbound)); got != vectorOutbound {
		t.Errorf("outbound subkey = %s", got)
	}
	if got := hex.EncodeToString(Subkey(vectorMaster, PurposeInbound)); got != vectorInbound {
		t.Errorf("inbound subkey = %s", got)
	}
	// The master is trimmed before derivation.
	if got := hex.EncodeToString(Subkey("  "+vectorMaster+"\n", PurposeOutbound)); got != vectorOutbound {
		t.Errorf("untrimmed master derived %s", got)
	}
}

func TestSignMatchesVectorToken(t *testing.T) {
	got, err := Sign(Subkey(vectorMaster, PurposeOutbound), Claims{
		Iss: "magento", Sub: "tenant-42", Aud: "byte8-ledger", Iat: 1714400000, Nbf: 1714400000, Exp: 1714400060, Jti: "abc-jti",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != vectorToken {
		t.Fatalf("token mismatch\n got %s\nwant %s", got, vectorToken)
	}
}

func TestVerifyOutboundVector(t *testing.T) {
	tok, err := Parse(vectorToken)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1714400010, 0)
	if err := VerifyOutbound(tok, vectorMaster, "tenant-42", at); err != nil {
		t.Fatalf("vector token refused: %v", err)
	}
	cases := map[string]struct {
		key, tenant string
		at          time.Time
	}{
		"wrong key":    {"other", "tenant-42", at},
		"wrong tenant": {vectorMaster, "tenant-43", at},
		"expired":      {vectorMaster, "tenant-42", time.Unix(1714400060+31, 0)},
		"not yet":      {vectorMaster, "tenant-42", time.Unix(1714400000-31, 0)},
	}
	for name, c := range cases {
		var ve *VerifyError
		if err := VerifyOutbound(tok, c.key, c.tenant, c.at); !errors.As(err, &ve) {
			t.Errorf("%s: want a VerifyError, got %v", name, err)
		}
	}
	// The inbound key must not verify an outbound token.
	if tok.SignatureValid(Subkey(vectorMaster, PurposeInbound)) {
		t.Error("outbound token verified with the inbound key")
	}
}

func TestParseRejects(t *testing.T) {
	key := Subkey("k", PurposeOutbound)
	bad := []string{
		"a.b", "a.b.c.d", "!!.x.y",
		// aud as an array, as golang-jwt emits by default.
		mustSignRaw(t, key, `{"alg":"HS256","typ":"JWT"}`, `{"iss":"magento","sub":"t","aud":["byte8-ledger"],"iat":1,"nbf":1,"exp":2,"jti":"j"}`),
		// float times.
		mustSignRaw(t, key, `{"alg":"HS256","typ":"JWT"}`, `{"iss":"magento","sub":"t","aud":"byte8-ledger","iat":1.7e9,"nbf":1,"exp":2,"jti":"j"}`),
		// alg none / missing typ.
		mustSignRaw(t, key, `{"alg":"none","typ":"JWT"}`, `{"iss":"magento","sub":"t","aud":"byte8-ledger","iat":1,"nbf":1,"exp":2,"jti":"j"}`),
		mustSignRaw(t, key, `{"alg":"HS256"}`, `{"iss":"magento","sub":"t","aud":"byte8-ledger","iat":1,"nbf":1,"exp":2,"jti":"j"}`),
	}
	for _, raw := range bad {
		if _, err := Parse(raw); !errors.Is(err, ErrMalformed) {
			t.Errorf("%.40s…: want ErrMalformed, got %v", raw, err)
		}
	}
}

func mustSignRaw(t *testing.T, key []byte, h, c string) string {
	t.Helper()
	s := b64.EncodeToString([]byte(h)) + "." + b64.EncodeToString([]byte(c))
	return s + "." + b64.EncodeToString(mac(key, s))
}

func TestMintInboundPassesMagentoRules(t *testing.T) {
	now := time.Now()
	raw, err := MintInbound("secret", "tenant-1", now)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyInbound(tok, "secret", "tenant-1", now); err != nil {
		t.Fatal(err)
	}
	// Magento's nbf check has no tolerance; Ledger's clock may run 29 s ahead.
	if err := VerifyInbound(tok, "secret", "tenant-1", now.Add(-29*time.Second)); err != nil {
		t.Fatalf("clock 29 s behind: %v", err)
	}
	if a, b := NewJTI(), NewJTI(); a == b || len(a) != 36 {
		t.Fatalf("jti %q %q", a, b)
	}
}

// Remembered keys are the derived ones, per master key and purpose, and a
// caller changing its copy changes nothing for the next.
func TestSubkeyRemembered(t *testing.T) {
	first := Subkey(vectorMaster, PurposeOutbound)
	first[0] ^= 0xff
	if got := hex.EncodeToString(Subkey(vectorMaster, PurposeOutbound)); got != vectorOutbound {
		t.Fatalf("second derivation %s, want %s", got, vectorOutbound)
	}
	if got := hex.EncodeToString(Subkey(vectorMaster, PurposeInbound)); got != vectorInbound {
		t.Fatalf("inbound after outbound %s, want %s", got, vectorInbound)
	}
	if hex.EncodeToString(Subkey(vectorMaster+"x", PurposeOutbound)) == vectorOutbound {
		t.Fatal("another master key gave the same subkey")
	}
}

// BenchmarkSubkey: a remembered key against deriving it (the cost every
// webhook and sync-state call paid before).
// go test -run '^$' -bench BenchmarkSubkey -benchmem ./libs/magento
func BenchmarkSubkey(b *testing.B) {
	b.Run("remembered", func(b *testing.B) {
		for b.Loop() {
			Subkey(vectorMaster, PurposeOutbound)
		}
	})
	b.Run("derived", func(b *testing.B) {
		for b.Loop() {
			if _, err := hkdf.Key(sha256.New, []byte(vectorMaster), nil, PurposeOutbound, 32); err != nil {
				b.Fatal(err)
			}
		}
	})
}
