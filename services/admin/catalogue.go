package admin

import (
	"html/template"
	"regexp"
	"strings"
)

//go:generate go run ./internal/runbookgen/main.go -in ../../docs/runbooks.md -out runbook_gen.go

// runbookEntry is one entry of docs/runbooks.md (runbook_gen.go holds them
// all): what a class, code, skip reason or ingest answer means, how to
// confirm it, fix it and replay what it stopped. The texts are the page's
// markdown, each paragraph on one line.
type runbookEntry struct {
	Kind, Value                 string
	Summary                     string
	Means, Confirm, Fix, Replay string
	More                        string
}

// Anchor is the entry's anchor in docs/runbooks.md ("code-record_invalid").
func (e runbookEntry) Anchor() string { return e.Kind + "-" + e.Value }

// DocLink is where the entry is in the repository's docs.
func (e runbookEntry) DocLink() string { return "docs/runbooks.md#" + e.Anchor() }

// SummaryHTML, MeansHTML, ConfirmHTML, FixHTML and ReplayHTML are the parts
// as HTML (runbookHTML).
func (e runbookEntry) SummaryHTML() template.HTML { return runbookHTML(e.Summary) }
func (e runbookEntry) MeansHTML() template.HTML   { return runbookHTML(e.Means) }
func (e runbookEntry) ConfirmHTML() template.HTML { return runbookHTML(e.Confirm) }
func (e runbookEntry) FixHTML() template.HTML     { return runbookHTML(e.Fix) }
func (e runbookEntry) ReplayHTML() template.HTML  { return runbookHTML(e.Replay) }

// catalogued looks an entry up by kind ("code", "class", "skip", "ingest")
// and value.
func catalogued(kind, value string) (runbookEntry, bool) {
	if value == "" {
		return runbookEntry{}, false
	}
	e, ok := runbookEntries[kind+"-"+value]
	return e, ok
}

// catalogueFor is the catalogued fix of a failed or skipped run or a dead
// letter: the code's entry first (the precise cause), then the class's, then
// the skip reason's. Values the page does not know are left out; the
// runbooks guard test keeps that from happening to values Ledger produces.
func catalogueFor(class, code, skip string) []runbookEntry {
	var out []runbookEntry
	for _, k := range [][2]string{{"code", code}, {"class", class}, {"skip", skip}} {
		if e, ok := catalogued(k[0], k[1]); ok {
			out = append(out, e)
		}
	}
	return out
}

var (
	mdCode   = regexp.MustCompile("`([^`]+)`")
	mdStrong = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	mdLink   = regexp.MustCompile(`\[([^\]]+)\]\(([^)\s]+)\)`)
)

// runbookHTML renders a catalogue text: HTML-escaped first, then `code`,
// **strong** and [text](link) (the link's text only: the docs are not served
// by the console; the page names docs/runbooks.md) are turned into markup,
// blank lines into paragraph breaks. Nothing of the input survives unescaped.
func runbookHTML(md string) template.HTML {
	var b strings.Builder
	for i, para := range strings.Split(md, "\n\n") {
		if i > 0 {
			b.WriteString("<br><br>")
		}
		s := template.HTMLEscapeString(para)
		s = mdLink.ReplaceAllString(s, "$1")
		s = mdCode.ReplaceAllString(s, "<code>$1</code>")
		s = mdStrong.ReplaceAllString(s, "<strong>$1</strong>")
		b.WriteString(s)
	}
	return template.HTML(b.String()) //nolint:gosec // built from escaped text and fixed tags only
}
