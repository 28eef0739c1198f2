package quirks

import (
	"testing"

	"github.com/ledgersync/ledger/libs/money"
)

func TestCrossBorder(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		country, home string
		want          bool
	}{{"FR", "GB", true}, {"gb", "GB", false}, {"", "GB", false}, {" us ", "GB", true}} {
		if got := CrossBorder(c.country, c.home); got != c.want {
			t.Errorf("CrossBorder(%q, %q) = %v", c.country, c.home, got)
		}
	}
	moved := ZeroRatedOutsideHome([]money.Amount{money.MustParse("4.00"), money.MustParse("1.53")}, money.MustParse("1"))
	if moved.String() != "6.53" {
		t.Errorf("moved %s", moved)
	}
}
