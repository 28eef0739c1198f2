package sagesim

import "regexp"

// htmlEntity matches named and numeric HTML entities: &trade; &amp; &#8482; &#x2122;
var htmlEntity = regexp.MustCompile(`&[#a-zA-Z0-9]+;`)

// checkHTMLEntities is quirk HTMLEntitiesRejected: Sage refuses a line
// description containing an HTML entity. It answers with the umbrella entry;
// the simulator adds one naming the entity after it.
func checkHTMLEntities(q Quirks, description string) []APIError {
	if m := htmlEntity.FindString(description); q.HTMLEntitiesRejected && m != "" {
		return []APIError{apiErr(CodeRecordInvalid,
			"Description contains invalid characters (HTML entity \""+m+"\").", "line_items.description")}
	}
	return nil
}
