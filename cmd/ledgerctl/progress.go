package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a one-line progress bar on a terminal (redrawn in place), or
// prints a plain line at most every progressLogEvery when the output is not a
// terminal (a log file, CI).
type progress struct {
	w        io.Writer
	tty      bool
	start    time.Time
	lastDraw time.Time
	width    int // of the previous line, to blank it
	drawn    bool
}

const progressLogEvery = 5 * time.Second

func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: isTerminal(w), start: time.Now()}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// update shows done of total (total 0: unknown) with a detail text; rateOf is
// the count per second is computed from (usually done minus where it resumed).
func (p *progress) update(done, total, rateOf int64, detail string, final bool) {
	now := time.Now()
	if !final && now.Sub(p.lastDraw) < p.every() {
		return
	}
	p.lastDraw = now
	elapsed := now.Sub(p.start)
	rate := float64(rateOf) / max(elapsed.Seconds(), 1e-3)
	var b strings.Builder
	if total > 0 {
		frac := min(float64(done)/float64(total), 1)
		const barWidth = 30
		fill := int(frac * barWidth)
		fmt.Fprintf(&b, "[%s%s] %3.0f%% %s/%s", strings.Repeat("#", fill), strings.Repeat(".", barWidth-fill), frac*100,
			group(done), group(total))
	} else {
		fmt.Fprintf(&b, "%s", group(done))
	}
	if detail != "" {
		fmt.Fprintf(&b, "  %s", detail)
	}
	fmt.Fprintf(&b, "  %s/s", group(int64(rate)))
	if total > 0 && !final && rate > 0 && done < total {
		eta := time.Duration(float64(total-done) / rate * float64(time.Second))
		fmt.Fprintf(&b, "  ETA %s", eta.Round(time.Second))
	} else {
		fmt.Fprintf(&b, "  %s", elapsed.Round(100*time.Millisecond))
	}
	line := b.String()
	if p.tty {
		pad := ""
		if n := p.width - len(line); n > 0 {
			pad = strings.Repeat(" ", n)
		}
		fmt.Fprintf(p.w, "\r%s%s", line, pad)
		p.width = len(line)
		p.drawn = true
		if final {
			fmt.Fprintln(p.w)
			p.drawn = false
		}
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) every() time.Duration {
	if p.tty {
		return 100 * time.Millisecond
	}
	return progressLogEvery
}

// end finishes a bar interrupted by an error (moves off the bar's line).
func (p *progress) end() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// group writes n with thousands separators: 100000 → 100,000.
func group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
