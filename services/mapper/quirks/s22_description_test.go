package quirks

import (
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestCleanText(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"Widget&trade; Pro":               "Widget™ Pro",
		"Fish &amp; Chips":                "Fish & Chips",
		"Double &amp;trade; encoded":      "Double ™ encoded",
		"Numeric &#8482; and &#x2122;":    "Numeric ™ and ™",
		"<b>Bold</b> <br/>name":           "Bold name",
		"&lt;i&gt;escaped tag&lt;/i&gt;":  "escaped tag",
		"tabs\tand\nnewlines\r\n  spaces": "tabs and newlines spaces",
		"ctrl\x00\x07chars":               "ctrl chars",
		"a < b > c":                       "a < b > c",
		"unknown &foo; entity":            "unknown &foo entity",
		"   ":                             "",
		"bad utf8 \xff\xfe here":          "bad utf8 here",
		"&amp;amp;amp;lt;b&amp;gt;deep":   "deep",
		"R&D department":                  "R&D department",
	}
	for in, want := range cases {
		if got := CleanText(in, 0); got != want {
			t.Errorf("CleanText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCleanTextTruncatesRuneSafe(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("é", 150) + strings.Repeat("™", 100)
	got := CleanText(in, MaxDescription)
	if n := utf8.RuneCountInString(got); n != MaxDescription || !utf8.ValidString(got) {
		t.Fatalf("got %d runes, valid %v", n, utf8.ValidString(got))
	}
}

func TestDescriptionFallsBackToSKU(t *testing.T) {
	t.Parallel()
	if d, changed := Description("<p> </p>", "SKU-1"); d != "SKU-1" || !changed {
		t.Fatalf("got %q %v", d, changed)
	}
	if d, changed := Description("Plain name", "SKU-1"); d != "Plain name" || changed {
		t.Fatalf("got %q %v", d, changed)
	}
}

var sageEntity = regexp.MustCompile(`&[#a-zA-Z0-9]+;`)

func FuzzCleanText(f *testing.F) {
	for _, s := range []string{"Widget&trade;", "&amp;amp;", "<b>x</b>", "a\x00b", "\xff", "&ampersand", "&lt;&lt;b&gt;&gt;", "&#0;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := CleanText(in, MaxDescription)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 from %q: %q", in, out)
		}
		if utf8.RuneCountInString(out) > MaxDescription {
			t.Fatalf("too long from %q", in)
		}
		if sageEntity.MatchString(out) {
			t.Fatalf("entity survives in %q (from %q)", out, in)
		}
		if strings.TrimSpace(out) != out || strings.Contains(out, "  ") {
			t.Fatalf("whitespace not collapsed in %q", out)
		}
		for _, r := range out {
			if unicode.IsControl(r) {
				t.Fatalf("control char %U in %q", r, out)
			}
		}
	})
}
