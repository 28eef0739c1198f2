package sagesim

// umbrellaLineError is the entry Sage puts first for many unrelated line failures.
var umbrellaLineError = required("line_items.description")

// withUmbrella is quirk UmbrellaLineError: when any line of a sales document
// fails, Sage's first entry is line_items.description "This field is
// required.", whatever the real cause; the real entries follow, so a client
// that reads only the first blames the description. Off, only the real
// entries are sent.
func withUmbrella(q Quirks, header, lines []APIError) []APIError {
	if len(lines) == 0 {
		return header
	}
	out := make([]APIError, 0, len(header)+len(lines)+1)
	if q.UmbrellaLineError {
		out = append(out, umbrellaLineError)
	}
	return append(append(out, header...), lines...)
}
