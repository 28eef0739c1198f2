package quirks

import (
	"strings"
	"testing"
	"time"
)

// TestCleanTextIsLinear: a name nested a quarter of a million levels deep
// (&amp;amp;amp;…) or holding as many semicolon-separated entity runs once
// took minutes, a round over the whole string per level; the shop's answer
// may be 16 MiB. It must take milliseconds.
func TestCleanTextIsLinear(t *testing.T) {
	t.Parallel()
	for name, s := range map[string]string{
		"nested": "&" + strings.Repeat("amp;", 250_000) + "trade;",
		"runs":   "&a;" + strings.Repeat("a;", 250_000),
	} {
		start := time.Now()
		out := CleanText(s, MaxDescription)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: %d bytes took %s", name, len(s), d)
		}
		if sageEntity.MatchString(out) {
			t.Errorf("%s: an entity survives in %q", name, out)
		}
	}
}
