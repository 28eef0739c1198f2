package mapper

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	for n, base := range map[uint64]time.Duration{
		1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 9: 256 * time.Second,
		10: MaxBackoff, 40: MaxBackoff, 0: time.Second,
	} {
		for range 50 {
			d := Backoff(n)
			lo, hi := time.Duration(float64(base)*0.8), time.Duration(float64(base)*1.2)
			if d < lo || d > hi {
				t.Fatalf("Backoff(%d) = %s, want within [%s, %s]", n, d, lo, hi)
			}
		}
	}
}
