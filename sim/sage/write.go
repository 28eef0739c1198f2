package sagesim

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"time"
)

// maxBody bounds request bodies; Sage's own limit is not documented.
const maxBody = 1 << 20

// write is the one path of every POST and PUT: read the object under the root
// key, check the whole body against Sage's published request schema (strict
// mode, schema.go), let decode take it apart (it returns the idempotency_id), then, under
// the state lock, replay what an earlier request with that idempotency_id
// answered, or run apply and remember its answer. Lookup and store happen
// under one lock, so concurrent duplicates create once.
//
// Sage replays the original answer to an idempotency_id used for the same
// resource type within 7 days, and refuses one used for another type. Only
// successes are remembered [I]: Sage documents replay of "the original result"
// for them, and a client that fixes a 422 and retries with the same
// deterministic id must get through.
func (s *Server) write(r *http.Request, c *apiCall, root string, decode func(raw json.RawMessage) (string, *response),
	apply func(b *business, q Quirks, now time.Time) *response) *response {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	var env map[string]json.RawMessage
	switch {
	case err != nil || len(body) > maxBody:
		return errorResponse(http.StatusBadRequest, apiErr(CodeBadRequest, "The request body could not be read.", ""))
	case json.Unmarshal(body, &env) != nil:
		return errorResponse(http.StatusBadRequest, apiErr(CodeBadRequest, "The request body is not valid JSON.", ""))
	case env[root] == nil || string(env[root]) == "null":
		return unprocessable(required(root))
	}
	// Strict mode: unknown fields and wrong types are refused before anything
	// reads the body; missing required fields join the resource's own answer.
	var missing []APIError
	if s.StrictSchema() {
		var wrong []APIError
		if wrong, missing = checkSchema(r.Method, root, body); len(wrong) > 0 {
			return unprocessable(append(wrong, missing...)...)
		}
	}
	idem, bad := decode(env[root])
	if bad != nil {
		return requireFields(bad, missing)
	}
	q, _ := s.controls()
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := c.business
	if e, ok := b.idem[idem]; idem != "" && ok && s.Now().Before(e.expiresAt) {
		if e.resource != root {
			return unprocessable(apiErr(CodeIdempotencyMismatch, "Entity type mismatch", ""))
		}
		return e.resp
	}
	resp := apply(b, q, now)
	if len(missing) > 0 {
		return requireFields(resp, missing)
	}
	if idem != "" && resp.status/100 == 2 {
		if b.idem == nil {
			b.idem = map[string]idemEntry{}
		}
		b.idem[idem] = idemEntry{root, resp, s.Now().Add(idempotencyTTL)}
	}
	return resp
}

// into is write's decode step into dst, whose idempotency_id field is idem.
func into(root string, dst any, idem *string) func(json.RawMessage) (string, *response) {
	return func(raw json.RawMessage) (string, *response) {
		bad := unmarshalRoot(root, raw, dst)
		return *idem, bad
	}
}

// unmarshalRoot decodes the object under root into dst; a field of the wrong
// type is a 422 naming the field.
func unmarshalRoot(root string, raw json.RawMessage, dst any) *response {
	var te *json.UnmarshalTypeError
	switch err := json.Unmarshal(raw, dst); {
	case err == nil:
		return nil
	case errors.As(err, &te) && te.Field != "":
		return invalid(te.Field)
	}
	return invalid(root)
}

func invalid(source string) *response {
	return unprocessable(apiErr(CodeRecordInvalid, "is invalid", source))
}

// mergeFields overlays update on base and decodes the merged fields into dst.
func mergeFields(root string, base, update map[string]json.RawMessage, dst any) (map[string]json.RawMessage, *response) {
	merged := maps.Clone(base)
	if merged == nil {
		merged = make(map[string]json.RawMessage, len(update))
	}
	maps.Copy(merged, update)
	raw, err := json.Marshal(merged)
	if err != nil {
		return nil, invalid(root)
	}
	return merged, unmarshalRoot(root, raw, dst)
}

// upsert writes documents whose PUT sends only the fields it changes (sales
// documents, products, services): they are laid over the request the document
// was last written from, and save validates the merge (decoded into a fresh
// In) and returns the document to store with it, or the entries of a 422.
type upsert[D document, In any] struct {
	*kind[D]
	newInput func() In
	// typesFirst checks the field types of a POST before its idempotency_id
	// is looked up, as sales documents do.
	typesFirst bool
	// guard, when set, may refuse a PUT of prev (with the entries of a 422)
	// before anything is merged.
	guard func(prev D) []APIError
	save  func(b *business, in In, prev D, update bool, q Quirks, now time.Time) (D, []APIError)
}

// handler answers POST /resource (update false) or PUT /resource/{id}.
func (u *upsert[D, In]) handler(s *Server, update bool) apiHandler {
	return func(r *http.Request, c *apiCall) *response {
		var fields map[string]json.RawMessage
		decode := func(raw json.RawMessage) (idem string, bad *response) {
			if json.Unmarshal(raw, &fields) != nil {
				return "", invalid(u.root)
			}
			if v, ok := fields["idempotency_id"]; ok {
				if json.Unmarshal(v, &idem) != nil {
					return "", invalid("idempotency_id")
				}
				delete(fields, "idempotency_id")
			}
			if u.typesFirst && !update {
				_, bad = mergeFields(u.root, nil, fields, u.newInput())
			}
			return idem, bad
		}
		return s.write(r, c, u.root, decode, func(b *business, q Quirks, now time.Time) *response {
			st, id := u.store(b), r.PathValue("id")
			prev, ok := st.live(id)
			if update && !ok {
				return notFound()
			}
			if update && u.guard != nil {
				if errs := u.guard(prev); len(errs) > 0 {
					return unprocessable(errs...)
				}
			}
			in := u.newInput()
			merged, bad := mergeFields(u.root, st.inputs[id], fields, in)
			if bad != nil {
				return bad
			}
			d, errs := u.save(b, in, prev, update, q, now)
			if len(errs) > 0 {
				return unprocessable(errs...)
			}
			st.put(d, merged)
			if update {
				return jsonResponse(http.StatusOK, d)
			}
			return jsonResponse(http.StatusCreated, d)
		})
	}
}

// idempotencyTTL is how long Sage remembers an idempotency_id.
const idempotencyTTL = 7 * 24 * time.Hour

// idemEntry is the remembered answer to a request of resource that carried an
// idempotency_id.
type idemEntry struct {
	resource  string
	resp      *response
	expiresAt time.Time
}
