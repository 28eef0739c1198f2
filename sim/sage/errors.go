package sagesim

import (
	"encoding/json"
	"net/http"
)

// APIError is one entry of the error array Sage answers with on every 4xx and 5xx
// under /v3.1/.
type APIError struct {
	Severity string `json:"$severity"`
	DataCode string `json:"$dataCode"`
	Message  string `json:"$message"`
	Source   string `json:"$source"`
}

// Data codes used by the simulator. The first four appear in Sage's documents;
// the others are Sage-like names for cases Sage has not documented.
const (
	CodeAuthorizationFailure = "AuthorizationFailure"
	CodeUnexpectedError      = "UnexpectedError"
	CodeRecordInvalid        = "RecordInvalid"
	CodeRecordNotFound       = "RecordNotFound"
	CodeIdempotencyMismatch  = "IdempotencyResourceMismatch"
	CodeMultiUserAccess      = "MultiUserAccessDenied"
	CodeTooManyRequests      = "TooManyRequests"
	CodeUnsupportedMediaType = "UnsupportedMediaType"
	CodeBadRequest           = "BadRequest"
)

func apiErr(code, message, source string) APIError {
	return APIError{Severity: "error", DataCode: code, Message: message, Source: source}
}

func required(source string) APIError {
	return apiErr(CodeRecordInvalid, "This field is required.", source)
}

// response is a finished answer to an API request. Handlers build it (usually
// under the state lock) and the middleware writes it, or drops it on purpose.
type response struct {
	status int
	body   []byte
	header http.Header
}

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		return errorResponse(http.StatusInternalServerError, apiErr(CodeUnexpectedError, "An unexpected error occurred.", ""))
	}
	return response{status: status, body: b}
}

func errorResponse(status int, errs ...APIError) response {
	b, _ := json.Marshal(errs) // a slice of strings always marshals
	return response{status: status, body: b}
}

func notFound() response {
	return errorResponse(http.StatusNotFound, apiErr(CodeRecordNotFound, "Couldn't find record.", ""))
}

func (r response) write(w http.ResponseWriter) {
	for k, vs := range r.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if r.body != nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(r.status)
	if r.body != nil {
		_, _ = w.Write(r.body)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	jsonResponse(status, v).write(w)
}
