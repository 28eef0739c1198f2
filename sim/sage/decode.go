package sagesim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"
)

// maxBody bounds request bodies; Sage's own limit is not documented.
const maxBody = 1 << 20

// decodeRoot decodes a body of the form {"<root>": {...}} into dst. Malformed
// JSON is a 400; a missing root key or a field of the wrong type is a 422.
func decodeRoot(r *http.Request, root string, dst any) *response {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		resp := errorResponse(http.StatusBadRequest, apiErr(CodeBadRequest, "The request body could not be read.", ""))
		return &resp
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		resp := errorResponse(http.StatusBadRequest, apiErr(CodeBadRequest, "The request body is not valid JSON.", ""))
		return &resp
	}
	raw, ok := env[root]
	if !ok || string(raw) == "null" {
		resp := errorResponse(http.StatusUnprocessableEntity, required(root))
		return &resp
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		source := root
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			source = te.Field
		}
		resp := errorResponse(http.StatusUnprocessableEntity, apiErr(CodeRecordInvalid, "is invalid", source))
		return &resp
	}
	return nil
}

// tooLong reports whether s has more than n characters.
func tooLong(s string, n int) bool { return utf8.RuneCountInString(s) > n }

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
