package magento

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParse feeds arbitrary Authorization tokens to Parse and VerifyOutbound
// as ingest does. Parse either refuses with ErrMalformed or yields claims
// that survive sign→parse unchanged; VerifyOutbound at the test vector's
// time with the vector's key accepts only a token whose claims hold
// verification's invariants (only the vector itself and re-encodings of it
// can pass the signature).
func FuzzParse(f *testing.F) {
	now := time.Unix(1714400010, 0)
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := Parse(raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) = %v, not ErrMalformed", raw, err)
			}
			return
		}
		if strings.Count(strings.TrimSpace(raw), ".") != 2 {
			t.Fatalf("Parse accepted %q, which is not three segments", raw)
		}
		key := Subkey("fuzz-key", PurposeOutbound)
		resigned, err := Sign(key, tok.Claims)
		if err != nil {
			t.Fatalf("claims %+v of %q do not sign: %v", tok.Claims, raw, err)
		}
		back, err := Parse(resigned)
		if err != nil || back.Claims != tok.Claims || !back.SignatureValid(key) {
			t.Fatalf("claims %+v of %q re-sign as %q, which parses as %+v, %v", tok.Claims, raw, resigned, back, err)
		}
		if err := VerifyOutbound(tok, vectorMaster, "tenant-42", now); err == nil {
			checkOutbound(t, tok.Claims, now)
		} else if !errors.As(err, new(*VerifyError)) {
			t.Fatalf("VerifyOutbound error %v is not a *VerifyError", err)
		}
	})
}

// FuzzVerify signs arbitrary claims with the tenant's real key, so the
// fuzzer reaches every check after the signature. Claims survive
// sign→parse; VerifyOutbound and VerifyInbound accept only claims that meet
// the wire protocol's rules computed without overflow (a lifetime of at most
// 300 s, not expired, not from the future, Ledger's replay-cache expiry
// representable); a token signed for one direction never verifies for the
// other, nor under another tenant's key.
func FuzzVerify(f *testing.F) {
	f.Fuzz(func(t *testing.T, iss, sub, aud, jti string, iat, nbf, exp, now int64) {
		c := Claims{Iss: iss, Sub: sub, Aud: aud, Iat: iat, Nbf: nbf, Exp: exp, Jti: jti}
		at := time.Unix(now, 0)
		for _, dir := range []struct {
			purpose, other string
			verify         func(*Token, string, string, time.Time) error
			check          func(*testing.T, Claims, time.Time)
		}{
			{PurposeOutbound, PurposeInbound, VerifyOutbound, checkOutbound},
			{PurposeInbound, PurposeOutbound, VerifyInbound, checkInbound},
		} {
			raw, err := Sign(Subkey(vectorMaster, dir.purpose), c)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := Parse(raw)
			if err != nil {
				t.Fatalf("a signed token does not parse: %v (%q)", err, raw)
			}
			if want := jsonClaims(c); tok.Claims != want {
				t.Fatalf("claims %+v parse back as %+v", want, tok.Claims)
			}
			if err := dir.verify(tok, vectorMaster, sub, at); err != nil {
				if !errors.As(err, new(*VerifyError)) {
					t.Fatalf("%s: %v is not a *VerifyError", dir.purpose, err)
				}
				continue
			}
			dir.check(t, tok.Claims, at)
			if tok.Claims.Sub != sub || tok.Claims.Jti == "" {
				t.Fatalf("%s accepted sub %q jti %q for tenant %q", dir.purpose, tok.Claims.Sub, tok.Claims.Jti, sub)
			}
			if tok.SignatureValid(Subkey(vectorMaster, dir.other)) || dir.verify(tok, vectorMaster+"x", sub, at) == nil {
				t.Fatalf("%s token verified under another key", dir.purpose)
			}
		}
	})
}

// jsonClaims is c as it comes back from JSON: each byte of invalid UTF-8 in
// a string becomes U+FFFD, as encoding/json does when Sign marshals it.
func jsonClaims(c Claims) Claims {
	for _, s := range []*string{&c.Iss, &c.Sub, &c.Aud, &c.Jti} {
		var b strings.Builder
		for i := 0; i < len(*s); {
			r, size := utf8.DecodeRuneInString((*s)[i:])
			b.WriteRune(r) // RuneError for an invalid byte
			i += size
		}
		*s = b.String()
	}
	return c
}

// checkOutbound is what an accepted Magento → Ledger token must satisfy,
// computed with big integers so no overflow can make it pass.
func checkOutbound(t *testing.T, c Claims, now time.Time) {
	t.Helper()
	n, lw := big.NewInt(now.Unix()), big.NewInt(int64(Leeway/time.Second))
	iat, nbf, exp := big.NewInt(c.Iat), big.NewInt(c.Nbf), big.NewInt(c.Exp)
	life := new(big.Int).Sub(exp, iat)
	switch {
	case c.Iss != IssuerMagento || c.Aud != AudienceLedger:
		t.Fatalf("accepted iss %q aud %q", c.Iss, c.Aud)
	case exp.Cmp(new(big.Int).Sub(n, lw)) <= 0:
		t.Fatalf("accepted an expired token: exp %d at %d", c.Exp, now.Unix())
	case nbf.Cmp(new(big.Int).Add(n, lw)) > 0 || iat.Cmp(new(big.Int).Add(n, lw)) > 0:
		t.Fatalf("accepted a token from the future: iat %d nbf %d at %d", c.Iat, c.Nbf, now.Unix())
	case life.Cmp(big.NewInt(300)) > 0:
		t.Fatalf("accepted a lifetime of %s s (iat %d, exp %d)", life, c.Iat, c.Exp)
	}
}

// checkInbound is what Magento's Verifier requires of a Ledger → Magento token.
func checkInbound(t *testing.T, c Claims, now time.Time) {
	t.Helper()
	n := big.NewInt(now.Unix())
	iat, nbf, exp := big.NewInt(c.Iat), big.NewInt(c.Nbf), big.NewInt(c.Exp)
	life := new(big.Int).Sub(exp, iat)
	switch {
	case c.Iss != IssuerLedger || c.Aud != AudienceMagento:
		t.Fatalf("accepted iss %q aud %q", c.Iss, c.Aud)
	case exp.Cmp(n) <= 0 || nbf.Cmp(n) > 0 || iat.Cmp(new(big.Int).Add(n, big.NewInt(30))) > 0:
		t.Fatalf("accepted iat %d nbf %d exp %d at %d", c.Iat, c.Nbf, c.Exp, now.Unix())
	case life.Cmp(big.NewInt(300)) > 0:
		t.Fatalf("accepted a lifetime of %s s (iat %d, exp %d)", life, c.Iat, c.Exp)
	}
}

// FuzzErrorMessage feeds Magento REST error bodies to ErrorMessage. A body
// that is not the envelope comes back as its (trimmed, cut) text; in an
// envelope every %1-style or %name placeholder whose parameter is a string or
// a JSON integer is replaced by exactly that text, as Magento renders it.
func FuzzErrorMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		msg := ErrorMessage(body)
		var env struct {
			Message    string          `json:"message"`
			Parameters json.RawMessage `json:"parameters"`
		}
		if json.Unmarshal(body, &env) != nil || env.Message == "" {
			if want := strings.TrimSpace(truncate(body, 512)); msg != want {
				t.Fatalf("non-envelope %q gave %q, want %q", body, msg, want)
			}
			return
		}
		// The substitution is checked for one placeholder whose value cannot
		// be confused with the rest of the message.
		dec := json.NewDecoder(bytes.NewReader(env.Parameters))
		dec.UseNumber()
		var list []any
		var named map[string]any
		var name string
		var value any
		switch {
		case json.Unmarshal(env.Parameters, new([]any)) == nil && dec.Decode(&list) == nil && len(list) > 0:
			name, value = "%1", list[0]
		case json.Unmarshal(env.Parameters, new(map[string]any)) == nil && dec.Decode(&named) == nil && len(named) == 1:
			for k, v := range named {
				name, value = "%"+k, v
			}
		default:
			return
		}
		var want string
		switch v := value.(type) {
		case string:
			want = v
		case json.Number:
			if strings.ContainsAny(v.String(), ".eE") {
				return
			}
			want = v.String()
		default:
			return
		}
		if name == "%" || strings.Count(env.Message, "%") != 1 || !strings.Contains(env.Message, name) ||
			strings.Contains(want, "%") || !utf8.ValidString(env.Message) {
			return
		}
		if placeholderPrefix(env.Message, name) {
			return // %10 or %names: another placeholder
		}
		if wantMsg := strings.Replace(env.Message, name, want, 1); msg != wantMsg {
			t.Fatalf("%s: %q renders as %q, want %q", body, env.Message, msg, wantMsg)
		}
	})
}

// placeholderPrefix reports whether name is followed by more name
// characters in msg (%name inside %names), which Magento's renderer treats
// differently; such messages are left to the seed corpus.
func placeholderPrefix(msg, name string) bool {
	i := strings.Index(msg, name) + len(name)
	if i >= len(msg) {
		return false
	}
	c := msg[i]
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// roundTrip answers every request of a Client from the fuzz input and
// checks the request it is given.
type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzClientResponse feeds arbitrary status codes and bodies to the Client as
// the mapper reads canonical documents (Get into a json.RawMessage). A 2xx
// answer is valid JSON, an empty body, or a *DecodeError; any other status is
// an *HTTPError carrying the status, ErrorMessage of the body and at most
// 8 KiB of it, whose Transient says whether Magento's retry rules make a
// retry worthwhile. Every request carries an inbound token Magento verifies.
func FuzzClientResponse(f *testing.F) {
	now := time.Unix(1714400010, 0)
	f.Fuzz(func(t *testing.T, status uint16, body []byte) {
		code := 100 + int(status)%500
		c := &Client{BaseURL: "https://shop.example/", TenantID: "tenant-42", APIKey: vectorMaster,
			Now: func() time.Time { return now },
			HTTP: &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
				if r.URL.String() != "https://shop.example/rest/V1/byte8/invoice/42" {
					t.Fatalf("request to %s", r.URL)
				}
				raw, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
				tok, err := Parse(raw)
				if err != nil || VerifyInbound(tok, vectorMaster, "tenant-42", now) != nil {
					t.Fatalf("the request's token is refused by Magento's rules: %v", err)
				}
				return &http.Response{StatusCode: code, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
			})}}
		var raw json.RawMessage
		err := c.Get(context.Background(), "/V1/byte8/invoice/42", &raw)
		if code >= 200 && code <= 299 {
			var de *DecodeError
			switch {
			case err == nil && len(bytes.TrimSpace(body)) == 0:
			case err == nil && !json.Valid(raw):
				t.Fatalf("2xx %q decoded as %q, not JSON", body, raw)
			case err != nil && !errors.As(err, &de):
				t.Fatalf("2xx %q: %v is not a *DecodeError", body, err)
			}
			return
		}
		var he *HTTPError
		if !errors.As(err, &he) {
			t.Fatalf("HTTP %d: %v is not an *HTTPError", code, err)
		}
		if he.Status != code || he.Message != ErrorMessage(body) || len(he.Body) > 8192+len("…[truncated]") {
			t.Fatalf("HTTP %d %q: %+v", code, body, he)
		}
		if want := code >= 500 || code == http.StatusTooManyRequests || (code == http.StatusBadRequest && strings.Contains(he.Message, "Could not upsert")); he.Transient() != want {
			t.Fatalf("HTTP %d %q: Transient %v", code, he.Message, he.Transient())
		}
		if !IsStatus(err, code) {
			t.Fatalf("IsStatus(%v, %d) is false", err, code)
		}
	})
}
