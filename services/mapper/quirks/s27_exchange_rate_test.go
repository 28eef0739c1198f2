package quirks

import (
	"testing"

	"github.com/ledgersync/ledger/libs/money"
)

func TestExchangeRate(t *testing.T) {
	t.Parallel()
	num := func(s string) *money.Number { return &money.Number{Amount: money.MustParse(s)} }
	cases := []struct {
		in   *money.Number
		want string
	}{
		{num("1.17"), "0.8547008547"},
		{num("1"), "1"},
		{num("1.0"), "1"},
		{num("0.85"), "1.1764705882"},
		{num("3"), "0.3333333333"},
		{nil, "1"},
		{num("0"), "1"},
		{num("-2"), "1"},
	}
	for _, c := range cases {
		if got := ExchangeRate(c.in).String(); got != c.want {
			t.Errorf("ExchangeRate(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}
