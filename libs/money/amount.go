package money

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// Amount is an exact decimal amount of money. The zero value is 0.
type Amount struct{ d decimal.Decimal }

// Zero is the amount 0.
var Zero = Amount{}

// Parse reads a decimal such as "12.34", "-0.5" or "100". It rejects anything that
// is not a plain decimal number (no exponent beyond what decimal accepts, no NaN).
func Parse(s string) (Amount, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return Amount{}, fmt.Errorf("money: %q is not a decimal amount", excerpt(s))
	}
	return Amount{d}, nil
}

// excerpt cuts s for an error message: an amount is short, and a message
// must not copy a megabyte of hostile input into every log line.
func excerpt(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// MustParse is Parse for constants in code and tests; it panics on bad input.
func MustParse(s string) Amount {
	a, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return a
}

// FromDecimal wraps a decimal.
func FromDecimal(d decimal.Decimal) Amount { return Amount{d} }

// FromCents returns cents/100.
func FromCents(cents int64) Amount { return Amount{decimal.New(cents, -2)} }

// Decimal returns the underlying decimal, for rates and other non-money arithmetic.
func (a Amount) Decimal() decimal.Decimal { return a.d }

// Add returns a+b.
func (a Amount) Add(b Amount) Amount { return Amount{a.d.Add(b.d)} }

// Sub returns a-b.
func (a Amount) Sub(b Amount) Amount { return Amount{a.d.Sub(b.d)} }

// Mul returns a×b (for quantity × unit price, rate × net).
func (a Amount) Mul(b Amount) Amount { return Amount{a.d.Mul(b.d)} }

// MulDecimal returns a×r for a non-money factor such as a tax or exchange rate.
func (a Amount) MulDecimal(r decimal.Decimal) Amount { return Amount{a.d.Mul(r)} }

// Neg returns -a.
func (a Amount) Neg() Amount { return Amount{a.d.Neg()} }

// Abs returns |a|.
func (a Amount) Abs() Amount { return Amount{a.d.Abs()} }

// Round rounds half away from zero to places decimals, as PHP's round() and
// Magento do, so Ledger's pennies agree with the shop's.
func (a Amount) Round(places int32) Amount { return Amount{a.d.Round(places)} }

// Cents rounds to 2 decimals.
func (a Amount) Cents() Amount { return a.Round(2) }

// Cmp compares a and b: -1, 0 or +1.
func (a Amount) Cmp(b Amount) int { return a.d.Cmp(b.d) }

// Equal reports whether a and b are the same number (1.0 equals 1.00).
func (a Amount) Equal(b Amount) bool { return a.d.Equal(b.d) }

// IsZero reports whether a is 0.
func (a Amount) IsZero() bool { return a.d.IsZero() }

// Sign is -1, 0 or +1.
func (a Amount) Sign() int { return a.d.Sign() }

// String formats with exactly two decimals ("12.30"), the form Sage answers with.
func (a Amount) String() string { return a.d.StringFixed(2) }

// Exact formats without padding or truncation ("12.3", "0.125").
func (a Amount) Exact() string { return a.d.String() }

// Sum adds amounts.
func Sum(as ...Amount) Amount {
	s := Zero
	for _, a := range as {
		s = s.Add(a)
	}
	return s
}

// MarshalJSON writes a numeric string with two decimals, as Sage does.
func (a Amount) MarshalJSON() ([]byte, error) {
	return []byte(`"` + a.String() + `"`), nil
}

// UnmarshalJSON accepts a JSON number (Magento), a numeric string (Sage) or null (0).
// The number is read from its literal text, never through float64.
func (a *Amount) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*a = Zero
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("money: %s is not a decimal amount", excerpt(string(b)))
		}
	}
	p, err := Parse(s)
	if err != nil {
		return err
	}
	*a = p
	return nil
}

// Number is an Amount that marshals as a bare JSON number, the way Magento's REST
// serializer emits floats (e.g. 100 or 12.5). Decoding is the same as Amount.
type Number struct{ Amount }

// MarshalJSON writes the exact decimal as a JSON number.
func (n Number) MarshalJSON() ([]byte, error) { return []byte(n.Exact()), nil }
