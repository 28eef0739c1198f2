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

var (
	// tag matches something that looks like an HTML tag or comment; a lone "<"
	// as in "a < b" is left alone.
	tag = regexp.MustCompile(`<[a-zA-Z/!?][^<>]*>`)
	// entityLike matches what Sage rejects as an HTML entity (&trade; &#8482;).
	entityLike = regexp.MustCompile(`&([#a-zA-Z0-9]+);`)
)

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

// CleanText decodes HTML entities to a fixed point (so &amp;trade; becomes ™),
// strips tags and control characters, collapses runs of white space to one
// space, trims, and cuts the result to at most max runes without splitting a
// character. An entity Go does not know (&foo;) loses its semicolon so Sage no
// longer sees an entity. Invalid UTF-8 is dropped. max <= 0 means no limit.
func CleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "")
	// Entities and tags can hide each other (&lt;b&gt;, &amp;trade;); every
	// step that changes s makes it shorter, so this reaches a fixed point.
	for {
		for {
			next := tag.ReplaceAllString(html.UnescapeString(s), " ")
			if next == s {
				break
			}
			s = next
		}
		next := entityLike.ReplaceAllString(s, "&$1")
		if next == s {
			break
		}
		s = next
	}
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
