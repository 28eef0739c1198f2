package money

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

var twoDecimals = regexp.MustCompile(`^-?[0-9]+\.[0-9]{2}$`)

// halfCent is the most Cents may move an amount.
var halfCent = MustParse("0.005")

// FuzzParse: text that Parse accepts survives both formats. Parse(Exact) gives
// the same number, String has exactly two decimals and parses back to the
// amount rounded to cents, and rounding moves it by at most half a cent. A
// refusal is a short "money: " error that does not echo a huge input.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "money: ") || len(msg) > 200 {
				t.Fatalf("error for %d bytes of input is %d bytes: %.120s", len(s), len(msg), msg)
			}
			return
		}
		if b, err := Parse(a.Exact()); err != nil || !b.Equal(a) {
			t.Fatalf("Parse(%q).Exact() = %q reparses as %v, %v", s, a.Exact(), b.Exact(), err)
		}
		str := a.String()
		if !twoDecimals.MatchString(str) {
			t.Fatalf("String() of %q is %q, not two decimals", s, str)
		}
		c, err := Parse(str)
		if err != nil || !c.Equal(a.Cents()) {
			t.Fatalf("String() %q of %q reparses as %v, %v; want %s", str, s, c.Exact(), err, a.Cents().Exact())
		}
		if d := a.Sub(a.Cents()).Abs(); d.Cmp(halfCent) > 0 {
			t.Fatalf("Cents moved %q by %s", s, d.Exact())
		}
		if !a.Cents().Cents().Equal(a.Cents()) {
			t.Fatalf("Cents of %q is not idempotent", s)
		}
	})
}

// FuzzUnmarshalJSON feeds amounts as Magento (numbers) and Sage (numeric
// strings) send them. Whatever decodes as an Amount re-encodes as Sage's
// two-decimal string and decodes back to its cents; a Number re-encodes as a
// valid JSON number of exactly the same value, never through float64.
func FuzzUnmarshalJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		var a Amount
		if err := json.Unmarshal(raw, &a); err == nil {
			out, err := json.Marshal(a)
			if err != nil {
				t.Fatalf("marshal %s: %v", a.Exact(), err)
			}
			var back Amount
			if err := json.Unmarshal(out, &back); err != nil || !back.Equal(a.Cents()) {
				t.Fatalf("%s encodes as %s, which decodes as %s (%v); want %s", raw, out, back.Exact(), err, a.Cents().Exact())
			}
		}
		var n Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return
		}
		out, err := json.Marshal(n)
		if err != nil || !json.Valid(out) {
			t.Fatalf("Number %s encodes as %q (%v), not a JSON number", n.Exact(), out, err)
		}
		if out[0] == '"' {
			t.Fatalf("Number %s encodes as a string %s", n.Exact(), out)
		}
		var back Number
		if err := json.Unmarshal(out, &back); err != nil || !back.Equal(n.Amount) {
			t.Fatalf("%s encodes as %s, which decodes as %s (%v)", raw, out, back.Exact(), err)
		}
	})
}
