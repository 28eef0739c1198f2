package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// The console's run page (GET /runs/{id}): the run, every attempt with a
// timeline picture, the canonical Magento entity and the Sage payload, the
// applied quirk rules, the error envelopes, the catalogued fix of its code and
// a Retry button (POST /runs/{id}/retry).

// runData is the run page.
type runData struct {
	Run      *ledgerv1.Run
	Attempts []*ledgerv1.Attempt
	// Canonical and SageRequest are pretty-printed JSON ("" when not
	// recorded).
	Canonical, SageRequest string
	Catalogue              []runbookEntry
	Timeline               template.HTML
	Trace                  string
	// Retryable is false for a running run (RetryRuns refuses it).
	Retryable bool
}

// Failures are the attempts that carry an error envelope.
func (d runData) Failures() []*ledgerv1.Attempt {
	var out []*ledgerv1.Attempt
	for _, a := range d.Attempts {
		if a.GetEnvelope() != "" {
			out = append(out, a)
		}
	}
	return out
}

// attemptRow is an attempt with its number (from 1).
type attemptRow struct {
	N       int
	Attempt *ledgerv1.Attempt
}

// AttemptRows numbers the attempts.
func (d runData) AttemptRows() []attemptRow {
	out := make([]attemptRow, len(d.Attempts))
	for i, a := range d.Attempts {
		out[i] = attemptRow{N: i + 1, Attempt: a}
	}
	return out
}

// handleRun renders GET /runs/{id}.
func (s *Service) handleRun(w http.ResponseWriter, r *http.Request) {
	resp, err := s.GetRun(r.Context(), &ledgerv1.GetRunRequest{SyncRunId: r.PathValue("id")})
	if err != nil {
		var msg string
		code := s.consoleRPCError(r, err, &msg, nil, "loading the run")
		s.renderConsoleMessage(w, r, code, page{Title: "Run not shown", Problem: msg,
			Fix: "Find the run on the runs page.", Back: "/runs"})
		return
	}
	run := resp.GetRun()
	d := runData{Run: run, Attempts: resp.GetAttempts(),
		Canonical: prettyJSON(resp.GetCanonicalJson()), SageRequest: prettyJSON(resp.GetSageRequestJson()),
		Catalogue: catalogueFor(run.GetErrorClass(), run.GetErrorCode(), run.GetSkipReason()),
		Timeline:  attemptTimeline(resp.GetAttempts()), Trace: traceLink(s.cfg.TracingUIURL, run.GetTraceId()),
		Retryable: run.GetStatus() != "running"}
	s.renderConsole(w, r, http.StatusOK, "run.html", "Run "+run.GetSyncRunId(), d)
}

// handleRetryRun is POST /runs/{id}/retry: RetryRuns with this one run.
func (s *Service) handleRetryRun(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	back := "/runs/" + id
	if _, err := runID(id); err != nil {
		back = "/runs"
	}
	resp, err := s.RetryRuns(r.Context(), &ledgerv1.RetryRunsRequest{SyncRunIds: []string{id}})
	switch {
	case err != nil:
		var msg string
		s.consoleRPCError(r, err, &msg, nil, "retrying the run")
		s.setFlash(w, flashError, "Not retried: "+msg)
	case len(resp.GetRuns()) == 1 && resp.GetRuns()[0].GetError() != "":
		s.setFlash(w, flashError, "Not retried: "+resp.GetRuns()[0].GetError())
	default:
		s.setFlash(w, flashOK, "Retrying: the run is pending again and its event was published; reload to follow it.")
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// prettyJSON indents a JSON document ("" stays ""; text that is not JSON is
// shown as it is).
func prettyJSON(raw string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return ""
	}
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(raw), "", "  "); err != nil {
		return raw
	}
	return b.String()
}

// Timeline picture geometry (SVG user units).
const (
	tlWidth  = 800
	tlLabel  = 230 // the labels' column
	tlRow    = 22
	tlBar    = 14
	tlAxis   = 24 // the time axis below the bars
	tlMinBar = 2  // a 0 ms attempt still shows
)

// outcomeColours colour the timeline's bars (store.Attempt outcomes).
var outcomeColours = map[string]string{"ok": "#2f855a", "retry": "#d69e2e", "failed": "#c53030"}

// attemptTimeline draws the attempts as bars on a time axis: each bar ends at
// the attempt's created_at (when it was recorded, its end) and is
// duration_ms long, coloured by outcome. Attempts without a time are laid end
// to end after the previous one. Every text is escaped.
func attemptTimeline(attempts []*ledgerv1.Attempt) template.HTML {
	if len(attempts) == 0 {
		return ""
	}
	type span struct{ start, end time.Time }
	spans := make([]span, len(attempts))
	var cursor time.Time
	for i, a := range attempts {
		d := time.Duration(a.GetDurationMs()) * time.Millisecond
		end := cursor.Add(d)
		if a.GetCreatedAt() != nil && a.GetCreatedAt().IsValid() && !a.GetCreatedAt().AsTime().IsZero() {
			end = a.GetCreatedAt().AsTime()
		}
		spans[i] = span{end.Add(-d), end}
		cursor = end
	}
	t0, t1 := spans[0].start, spans[0].end
	for _, sp := range spans {
		if sp.start.Before(t0) {
			t0 = sp.start
		}
		if sp.end.After(t1) {
			t1 = sp.end
		}
	}
	total := t1.Sub(t0)
	if total <= 0 {
		total = time.Millisecond
	}
	plot := float64(tlWidth - tlLabel - 10)
	x := func(t time.Time) float64 { return float64(tlLabel) + plot*float64(t.Sub(t0))/float64(total) }
	height := len(attempts)*tlRow + tlAxis
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="timeline" role="img" aria-labelledby="timeline-title" viewBox="0 0 %d %d" width="100%%" style="max-width:%dpx;background:#fff;border:1px solid #ddd" xmlns="http://www.w3.org/2000/svg">`,
		tlWidth, height, tlWidth)
	fmt.Fprintf(&b, `<title id="timeline-title">%d attempts over %s</title>`, len(attempts), template.HTMLEscapeString(total.String()))
	for i, a := range attempts {
		y := i * tlRow
		sp := spans[i]
		w := x(sp.end) - x(sp.start)
		if w < tlMinBar {
			w = tlMinBar
		}
		colour, ok := outcomeColours[a.GetOutcome()]
		if !ok {
			colour = "#718096"
		}
		label := a.GetStage()
		if a.GetMethod() != "" {
			label += " " + a.GetMethod()
		}
		if a.GetHttpStatus() != 0 {
			label += fmt.Sprintf(" %d", a.GetHttpStatus())
		}
		tip := fmt.Sprintf("#%d %s %s %s → %d, %d ms, %s", i+1, a.GetStage(), a.GetMethod(), a.GetPath(), a.GetHttpStatus(), a.GetDurationMs(), a.GetOutcome())
		fmt.Fprintf(&b, `<g class="attempt" data-outcome="%s"><title>%s</title>`, template.HTMLEscapeString(a.GetOutcome()), template.HTMLEscapeString(tip))
		fmt.Fprintf(&b, `<text x="4" y="%d" font-size="12" font-family="system-ui,sans-serif">%s</text>`, y+tlBar, template.HTMLEscapeString(truncate(label, 34)))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" rx="2" fill="%s"></rect></g>`, x(sp.start), y+4, w, tlBar, colour)
	}
	axisY := len(attempts)*tlRow + 4
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999"></line>`, tlLabel, axisY, tlWidth-10, axisY)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" font-family="system-ui,sans-serif" fill="#555">%s</text>`, tlLabel, axisY+14,
		template.HTMLEscapeString(t0.UTC().Format("15:04:05.000")))
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" font-family="system-ui,sans-serif" fill="#555" text-anchor="end">+%s</text>`, tlWidth-10, axisY+14,
		template.HTMLEscapeString(total.Round(time.Millisecond).String()))
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // numbers and escaped text only
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
