package admin

import (
	"slices"
	"strings"
	"unicode"

	"github.com/ledgersync/ledger/libs/bus"
)

// replayable reports whether a dead letter's original subject may be
// published to by a replay: one of Ledger's work streams (replayableSubjects),
// and a subject Ledger builds, so never a wildcard, an empty token or extra
// tokens a consumer would misread.
func replayable(subject string) bool {
	if _, err := bus.ParseSubject(subject); err != nil {
		return false
	}
	return slices.ContainsFunc(replayableSubjects, func(p string) bool { return strings.HasPrefix(subject, p) })
}

// subjectWord reports whether s can be one token of a subject filter: no
// separator, wildcard, white space or control character (a NATS subject
// ends at white space; a control character has no business in an entity
// type).
func subjectWord(s string) bool {
	return !strings.ContainsAny(s, ".*>") &&
		!strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}
