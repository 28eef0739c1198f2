package sage

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ErrorItem is one entry of Sage's error array.
type ErrorItem struct {
	Severity string `json:"$severity"`
	DataCode string `json:"$dataCode"`
	Message  string `json:"$message"`
	Source   string `json:"$source"`
}

// APIError is a non-2xx answer from the Sage API with its error array parsed.
type APIError struct {
	Method, Path string
	Status       int
	Items        []ErrorItem
	Body         string // raw body, first 16 KiB
	RequestID    string
	RetryAfter   string // Retry-After header, when Sage sent one
}

func (e *APIError) Error() string {
	p := e.Primary()
	msg := p.Message
	if p.Source != "" {
		msg = p.Source + ": " + msg
	}
	if p.DataCode != "" {
		msg = "[" + p.DataCode + "] " + msg
	}
	if msg == "" {
		msg = strings.TrimSpace(e.Body)
	}
	return fmt.Sprintf("sage %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, msg)
}

// umbrellaSource is the $source Sage answers first, with "This field is
// required.", for many unrelated line failures (quirk 20 in the catalogue of
// services/mapper/quirks).
const umbrellaSource = "line_items.description"

// Primary is the entry that names the real cause: the most specific $source
// (the one with the most path segments), never the umbrella
// "line_items.description: This field is required." when another entry exists,
// and the first entry when none has a source.
func (e *APIError) Primary() ErrorItem {
	var best ErrorItem
	bestScore := -2
	for _, it := range e.Items {
		score := 0
		if it.Source != "" && it.Source != "base" {
			score = 1 + strings.Count(it.Source, ".")
		}
		if it.Source == umbrellaSource && strings.Contains(strings.ToLower(it.Message), "required") && len(e.Items) > 1 {
			// Below an entry without a source, which may be the cause.
			score = -1
		}
		if score > bestScore {
			best, bestScore = it, score
		}
	}
	return best
}

// ParseErrors decodes Sage's error array; a body in another shape (a proxy's HTML
// page, the token endpoint's object) yields nil.
func ParseErrors(body []byte) []ErrorItem {
	var items []ErrorItem
	if json.Unmarshal(body, &items) == nil {
		return items
	}
	var one ErrorItem
	if json.Unmarshal(body, &one) == nil && (one.DataCode != "" || one.Message != "") {
		return []ErrorItem{one}
	}
	return nil
}
