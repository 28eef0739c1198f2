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
	raw, bad := readRoot(r, root)
	if bad != nil {
		return bad
	}
	return unmarshalRoot(root, raw, dst)
}

// readRoot reads the body and returns the raw object under root.
func readRoot(r *http.Request, root string) (json.RawMessage, *response) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		resp := errorResponse(http.StatusBadRequest, apiErr(CodeBadRequest, "The request body could not be read.", ""))
		return nil, &resp
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		resp := errorResponse(http.StatusBadRequest, apiErr(CodeBadRequest, "The request body is not valid JSON.", ""))
		return nil, &resp
	}
	raw, ok := env[root]
	if !ok || string(raw) == "null" {
		resp := errorResponse(http.StatusUnprocessableEntity, required(root))
		return nil, &resp
	}
	return raw, nil
}

// unmarshalRoot decodes the object under root into dst; a field of the wrong
// type is a 422 naming the field.
func unmarshalRoot(root string, raw json.RawMessage, dst any) *response {
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

// decodeObject reads the root object as a field map, for documents whose PUT
// merges over the stored request. The idempotency_id is returned separately
// and left out of the map.
func decodeObject(r *http.Request, root string) (map[string]json.RawMessage, string, *response) {
	raw, bad := readRoot(r, root)
	if bad != nil {
		return nil, "", bad
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		resp := errorResponse(http.StatusUnprocessableEntity, apiErr(CodeRecordInvalid, "is invalid", root))
		return nil, "", &resp
	}
	var idem string
	if v, ok := fields["idempotency_id"]; ok {
		if json.Unmarshal(v, &idem) != nil {
			resp := errorResponse(http.StatusUnprocessableEntity, apiErr(CodeRecordInvalid, "is invalid", "idempotency_id"))
			return nil, "", &resp
		}
		delete(fields, "idempotency_id")
	}
	return fields, idem, nil
}

// mergeFields overlays update on base (a PUT changes only the fields it sends)
// and decodes the result into dst. It returns the merged map.
func mergeFields(root string, base, update map[string]json.RawMessage, dst any) (map[string]json.RawMessage, *response) {
	merged := make(map[string]json.RawMessage, len(base)+len(update))
	for k, v := range base {
		merged[k] = v
	}
	for k, v := range update {
		merged[k] = v
	}
	raw, err := json.Marshal(merged)
	if err != nil {
		resp := errorResponse(http.StatusUnprocessableEntity, apiErr(CodeRecordInvalid, "is invalid", root))
		return nil, &resp
	}
	return merged, unmarshalRoot(root, raw, dst)
}

// tooLong reports whether s has more than n characters.
func tooLong(s string, n int) bool { return utf8.RuneCountInString(s) > n }

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
