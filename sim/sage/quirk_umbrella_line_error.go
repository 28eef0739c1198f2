package sagesim

// umbrellaLineError is the entry Sage puts first for many unrelated line failures.
var umbrellaLineError = required("line_items.description")

// Quirk §20 (B8): when any invoice line fails validation, the first entry of the
// error array is line_items.description "This field is required.", whatever the
// real cause; the real entries follow. A client that reads only the first entry
// blames the description. With the quirk off only the real entries are sent.
func withUmbrella(q Quirks, header, lines []APIError) []APIError {
	if len(lines) == 0 {
		return header
	}
	out := make([]APIError, 0, len(header)+len(lines)+1)
	if q.UmbrellaLineError {
		out = append(out, umbrellaLineError)
	}
	out = append(out, header...)
	return append(out, lines...)
}
