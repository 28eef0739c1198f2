package sagesim

import "regexp"

// htmlEntity matches named and numeric HTML entities: &trade; &amp; &#8482; &#x2122;
var htmlEntity = regexp.MustCompile(`&[#a-zA-Z0-9]+;`)

// Quirk §22 (B8): a line description containing an HTML entity fails 422. Sage
// answers with the §20 umbrella; the simulator adds the specific entry after it:
//
//	{"$dataCode":"RecordInvalid","$message":"Description contains invalid characters (HTML entity \"&trade;\").","$source":"line_items.description"}
func checkHTMLEntities(q Quirks, description string) []APIError {
	if !q.HTMLEntitiesRejected {
		return nil
	}
	if m := htmlEntity.FindString(description); m != "" {
		return []APIError{apiErr(CodeRecordInvalid,
			"Description contains invalid characters (HTML entity \""+m+"\").", "line_items.description")}
	}
	return nil
}
