package quirks

import (
	"slices"
	"strings"
	"testing"
)

func TestContactReference(t *testing.T) {
	t.Parallel()
	guest := "G" + GuestHash("jane@example.com")[:9]
	cases := []struct {
		id               int64
		email, cur, base string
		want             string
	}{
		{42, "x@y.z", "GBP", "GBP", "M42"},
		{42, "x@y.z", "EUR", "GBP", "M42E"},
		{42, "x@y.z", "eur", "GBP", "M42E"},
		{123456789, "", "GBP", "GBP", "M123456789"},
		{1234567890, "", "GBP", "GBP", "M" + strings.ToUpper("kf12oi")},
		{0, "  Jane@Example.COM ", "GBP", "GBP", guest},
		{0, "jane@example.com", "EUR", "GBP", guest[:9] + "E"},
		{0, "jane@example.com", "CHF", "GBP", guest[:9] + "F"},
		{0, "jane@example.com", "XYZ", "GBP", guest[:9] + "X"},
	}
	for _, c := range cases {
		got := ContactReference(c.id, c.email, c.cur, c.base)
		if got != c.want {
			t.Errorf("ContactReference(%d, %q, %s, %s) = %q, want %q", c.id, c.email, c.cur, c.base, got, c.want)
		}
		if len(got) > MaxContactReference {
			t.Errorf("%q is over %d characters", got, MaxContactReference)
		}
	}
}

func TestContactReferenceNeverOverTen(t *testing.T) {
	t.Parallel()
	for _, id := range []int64{1, 999999999, 1 << 40, 1<<63 - 1} {
		for _, cur := range []string{"GBP", "EUR", "ZZZ"} {
			if r := ContactReference(id, "", cur, "GBP"); len(r) > MaxContactReference {
				t.Errorf("id %d %s: %q", id, cur, r)
			}
		}
	}
}

func TestCurrencySuffixesAreDistinct(t *testing.T) {
	t.Parallel()
	seen := map[byte]string{}
	for cur, l := range currencySuffix {
		if other, ok := seen[l]; ok {
			t.Errorf("%s and %s share suffix %c", cur, other, l)
		}
		seen[l] = cur
	}
}

func TestReferenceCandidates(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		id       int64
		email    string
		currency string
	}{{0, "a@b.c", "GBP"}, {0, "a@b.c", "EUR"}, {42, "", "GBP"}, {999999999, "", "USD"}, {1 << 50, "", "EUR"}} {
		cands := ReferenceCandidates(c.id, c.email, c.currency, "GBP")
		if len(cands) != MaxReferenceCandidates || cands[0] != ContactReference(c.id, c.email, c.currency, "GBP") {
			t.Fatalf("%+v: %v", c, cands)
		}
		seen := map[string]bool{}
		for _, r := range cands {
			if len(r) > MaxContactReference || seen[r] {
				t.Fatalf("%+v: bad or repeated candidate %q in %v", c, r, cands)
			}
			seen[r] = true
		}
		if again := ReferenceCandidates(c.id, c.email, c.currency, "GBP"); !slices.Equal(again, cands) {
			t.Fatalf("not deterministic: %v vs %v", cands, again)
		}
	}
}
