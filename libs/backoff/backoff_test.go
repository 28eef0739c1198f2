package backoff_test

import (
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/backoff"
)

func TestDelayDoublesUpToCap(t *testing.T) {
	p := backoff.Policy{Base: time.Second, Cap: 5 * time.Second}
	want := []time.Duration{time.Second, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for n, w := range want {
		if got := p.Delay(uint64(n)); got != w {
			t.Errorf("Delay(%d) = %s, want %s", n, got, w)
		}
	}
	if got := p.Delay(1000); got != 5*time.Second {
		t.Errorf("Delay(1000) = %s, want the cap", got)
	}
}

func TestJitterSpreadsAroundTheDelay(t *testing.T) {
	for _, c := range []struct {
		r    float64
		want time.Duration
	}{{0, 800 * time.Millisecond}, {0.5, time.Second}, {0.999999, 1200 * time.Millisecond}} {
		p := backoff.Policy{Base: time.Second, Cap: time.Minute, Jitter: 0.2, Rand: func() float64 { return c.r }}
		if got := p.Delay(1); got.Round(time.Millisecond) != c.want {
			t.Errorf("rand %v: Delay(1) = %s, want %s", c.r, got, c.want)
		}
	}
}
