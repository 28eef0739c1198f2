package ingest

import (
	"mime"
	"net/http"
	"strings"
)

// headerError is a webhook header that can never be accepted: Code is 400 or
// 415, and the error names the header.
type headerError struct {
	Code    int
	Header  string
	Message string
}

func (e *headerError) Error() string { return e.Header + ": " + e.Message }

// checkWebhookHeaders refuses, before the body is read, the headers of a
// webhook that make it ambiguous or unreadable: a body that is not JSON in
// UTF-8 (415; a missing Content-Type is taken as JSON), a compressed body
// (415; the shop never compresses) and an Idempotency-Key sent more than once
// (400; which one counts would be a guess). A header sent twice is refused
// rather than one of its values picked.
func checkWebhookHeaders(h http.Header) *headerError {
	if v := h.Values("Idempotency-Key"); len(v) > 1 {
		return &headerError{http.StatusBadRequest, "Idempotency-Key", "header sent more than once; send the outbox row's key once"}
	}
	switch v := h.Values("Content-Type"); {
	case len(v) > 1:
		return &headerError{http.StatusUnsupportedMediaType, "Content-Type", "header sent more than once; send Content-Type: application/json once"}
	case len(v) == 1:
		mt, params, err := mime.ParseMediaType(v[0])
		if err != nil || mt != "application/json" {
			return &headerError{http.StatusUnsupportedMediaType, "Content-Type", "must be application/json, got " + describeHeader(v[0])}
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
			return &headerError{http.StatusUnsupportedMediaType, "Content-Type", "charset must be utf-8, got " + describeHeader(cs)}
		}
	}
	switch v := h.Values("Content-Encoding"); {
	case len(v) > 1:
		return &headerError{http.StatusUnsupportedMediaType, "Content-Encoding", "header sent more than once; send the body uncompressed, without Content-Encoding"}
	case len(v) == 1 && !strings.EqualFold(strings.TrimSpace(v[0]), "identity"):
		return &headerError{http.StatusUnsupportedMediaType, "Content-Encoding", "must be absent (or identity): send the body uncompressed, got " + describeHeader(v[0])}
	}
	return nil
}

// describeHeader quotes a short excerpt of a header value for an error
// message.
func describeHeader(v string) string { return describe([]byte(`"` + v + `"`)) }

// writeHeaderError answers a headerError: 400 invalid_request or 415
// unsupported_media_type, naming the header.
func (s *Service) writeHeaderError(w http.ResponseWriter, r *http.Request, tenant, event string, e *headerError) {
	s.log.WarnContext(r.Context(), "ingest: webhook rejected", "tenant", tenant, "event", event, "field", e.Header, "reason", e.Message)
	if e.Code == http.StatusUnsupportedMediaType {
		writeJSON(w, e.Code, errorBody{Error: "unsupported_media_type", Message: e.Error(), Field: e.Header})
		return
	}
	writeJSON(w, e.Code, errorBody{Error: "invalid_request", Message: e.Error(), Field: e.Header})
}
