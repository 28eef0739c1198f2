package quirks

import "testing"

func TestContactCurrency(t *testing.T) {
	t.Parallel()
	cases := [][3]string{{"eur", "GBP", "EUR"}, {" USD ", "GBP", "USD"}, {"", "gbp", "GBP"}}
	for _, c := range cases {
		if got := ContactCurrency(c[0], c[1]); got != c[2] {
			t.Errorf("ContactCurrency(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}
