package quirks

import (
	"html"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxDescription is the longest line description the mapper sends (runes).
const MaxDescription = 200

// tag matches something that looks like an HTML tag or comment; a lone "<"
// as in "a < b" is left alone. What Sage rejects as an HTML entity is
// &[#a-zA-Z0-9]+; (&trade;, &#8482;): dropEntitySemicolons.
var tag = regexp.MustCompile(`<[a-zA-Z/!?][^<>]*>`)

// Description is quirk 22: Sage rejects a line description holding an HTML
// entity (&trade;, &amp;, &#8482;) with a 422 that hides behind the umbrella
// error of quirk 20. Magento product names often carry entities, sometimes
// double-encoded (&amp;trade;), and tags. The name is cleaned with CleanText to
// at most MaxDescription runes; when nothing is left the SKU (cleaned the same
// way) is used instead, and NoDescription when that is empty too.
//
// changed reports whether the result differs from name, so the rule is recorded
// only on payloads it shaped.
func Description(name, sku string) (desc string, changed bool) {
	desc = CleanText(name, MaxDescription)
	if desc == "" {
		desc = CleanText(sku, MaxDescription)
	}
	if desc == "" {
		// Sage requires a description (an empty one is the umbrella error of
		// quirk 20); a line with neither a name nor a SKU still sells
		// something.
		desc = NoDescription
	}
	return desc, desc != name
}

// NoDescription describes a line whose name and SKU are both empty once
// cleaned.
const NoDescription = "Item"

// maxDecodePasses bounds the rounds of entity decoding and tag stripping.
// Names are encoded two or three times at most; each round costs the whole
// string, and a name nested thousands of levels deep (&amp;amp;amp;…, which
// each round unwraps once) took minutes to clean (found by FuzzPayment).
// What is still encoded after the last round loses its semicolons below.
const maxDecodePasses = 16

// dropEntitySemicolons removes the semicolon of everything that still looks
// like an entity (&foo; becomes &foo), in one pass: a dropped semicolon joins
// what follows into the same run (&a;b; would become &ab;), so every
// semicolon is dropped until the run ends.
func dropEntitySemicolons(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	run := -1 // characters of [#a-zA-Z0-9] since the last '&'; -1 outside a run
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '&':
			run = 0
		case c == ';' && run > 0:
			continue
		case run >= 0 && (c == '#' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'):
			run++
		default:
			run = -1
		}
		b.WriteByte(c)
	}
	return b.String()
}

// CleanText decodes HTML entities to a fixed point (so &amp;trade; becomes ™),
// strips tags and control characters, collapses runs of white space to one
// space, trims, and cuts the result to at most max runes without splitting a
// character. An entity Go does not know (&foo;) loses its semicolon so Sage no
// longer sees an entity. Invalid UTF-8 is dropped. max <= 0 means no limit.
func CleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "")
	// Entities and tags can hide each other (&lt;b&gt;, &amp;trade;); every
	// step that changes s makes it shorter, so this reaches a fixed point,
	// within maxDecodePasses for anything a shop really encodes.
	for range maxDecodePasses {
		next := tag.ReplaceAllString(html.UnescapeString(s), " ")
		if next == s {
			break
		}
		s = next
	}
	s = dropEntitySemicolons(s)
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == utf8.RuneError {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	out := b.String()
	if max > 0 && utf8.RuneCountInString(out) > max {
		n := 0
		for i := range out {
			if n == max {
				out = out[:i]
				break
			}
			n++
		}
		out = strings.TrimRightFunc(out, unicode.IsSpace)
	}
	return out
}
