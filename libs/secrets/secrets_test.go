package secrets

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func key(b byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(b), 32)))
}

func TestSealOpenAndRotation(t *testing.T) {
	old, err := ParseKeyRing("k1:" + key('a'))
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := old.SealString("api-key")
	rotated, err := ParseKeyRing("k2:" + key('b') + ",k1:" + key('a'))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rotated.OpenString(sealed); err != nil || v != "api-key" {
		t.Fatalf("open after rotation: %q %v", v, err)
	}
	resealed, _ := rotated.SealString("api-key")
	if !strings.HasPrefix(string(resealed), "k2.") {
		t.Fatalf("new values must use the first key")
	}
	if _, err := old.Open(resealed); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("want ErrUnknownKey, got %v", err)
	}
	tampered := append([]byte{}, sealed...)
	tampered[len(tampered)-1] ^= 1
	if _, err := old.Open(tampered); err == nil {
		t.Fatal("tampered value opened")
	}
}

func TestParseKeyRingErrorsNameTheFix(t *testing.T) {
	for _, spec := range []string{"", "nocolon", "k1:short", "k1:" + key('a') + ",k1:" + key('b')} {
		if _, err := ParseKeyRing(spec); err == nil || !strings.Contains(err.Error(), "LEDGER_SECRET_KEY") {
			t.Errorf("%q: %v", spec, err)
		}
	}
}

func TestStringRedacts(t *testing.T) {
	s := String("hunter2")
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s %#v", s, s, s)} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("leaked: %s", out)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Fatal("reveal")
	}
}
