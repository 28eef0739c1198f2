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
// key and let decode take it apart (it returns the idempotency_id), then, under
// the state lock, replay what an earlier request with that idempotency_id
// answered, or run apply and remember its answer. Lookup and store happen
// under one lock, so concurrent duplicates create once.
func (s *Server) write(r *http.Request, c *apiCall, root string, decode func(raw json.RawMessage) (string, *response),
	apply func(b *business, q Quirks, now time.Time) response) response {
	raw, bad := readRoot(r, root)
	if bad != nil {
		return *bad
	}
	idem, bad := decode(raw)
	if bad != nil {
		return *bad
	}
	q, _ := s.controls()
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	if resp, ok := s.replayLocked(c.business, root, idem); ok {
		return resp
	}
	resp := apply(c.business, q, now)
	s.rememberLocked(c.business, root, idem, resp)
	return resp
}

// into returns a decode step for write that decodes the root object into dst,
// whose idempotency_id field is idem.
func into(root string, dst any, idem *string) func(json.RawMessage) (string, *response) {
	return func(raw json.RawMessage) (string, *response) {
		bad := unmarshalRoot(root, raw, dst)
		return *idem, bad
	}
}

// fieldsInto returns a decode step for write that reads the root object as a
// field map into fields, for documents whose PUT merges over the stored request.
// The idempotency_id is left out of the map.
func fieldsInto(root string, fields *map[string]json.RawMessage) func(json.RawMessage) (string, *response) {
	return func(raw json.RawMessage) (string, *response) {
		if err := json.Unmarshal(raw, fields); err != nil {
			return "", invalid(root)
		}
		var idem string
		if v, ok := (*fields)["idempotency_id"]; ok {
			if json.Unmarshal(v, &idem) != nil {
				return "", invalid("idempotency_id")
			}
			delete(*fields, "idempotency_id")
		}
		return idem, nil
	}
}

// readRoot reads the body and returns the raw object under root. Malformed
// JSON is a 400; a missing root key is a 422.
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
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return invalid(te.Field)
		}
		return invalid(root)
	}
	return nil
}

// invalid is the 422 for a value of the wrong type.
func invalid(source string) *response {
	resp := errorResponse(http.StatusUnprocessableEntity, apiErr(CodeRecordInvalid, "is invalid", source))
	return &resp
}

// mergeFields overlays update on base (a PUT changes only the fields it sends)
// and decodes the result into dst. It returns the merged map.
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

// upsert writes the documents whose PUT sends only the fields it changes
// (sales documents, products and services): a PUT finds the document it
// replaces and lays the fields sent over the request that document was last
// written from. save validates the merged request, decoded into a fresh In,
// and returns the document, which is stored with the merged request, or the
// entries of a 422.
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
	return func(r *http.Request, c *apiCall) response {
		var fields map[string]json.RawMessage
		decode := fieldsInto(u.root, &fields)
		if u.typesFirst && !update {
			decode = func(raw json.RawMessage) (string, *response) {
				idem, bad := fieldsInto(u.root, &fields)(raw)
				if bad == nil {
					_, bad = mergeFields(u.root, nil, fields, u.newInput())
				}
				return idem, bad
			}
		}
		return s.write(r, c, u.root, decode, func(b *business, q Quirks, now time.Time) response {
			st := u.store(b)
			var prev D
			var base map[string]json.RawMessage
			if update {
				var ok bool
				if prev, ok = st.live(r.PathValue("id")); !ok {
					return notFound()
				}
				if u.guard != nil {
					if errs := u.guard(prev); len(errs) > 0 {
						return errorResponse(http.StatusUnprocessableEntity, errs...)
					}
				}
				base = st.inputs[prev.record().ID]
			}
			in := u.newInput()
			merged, bad := mergeFields(u.root, base, fields, in)
			if bad != nil {
				return *bad
			}
			d, errs := u.save(b, in, prev, update, q, now)
			if len(errs) > 0 {
				return errorResponse(http.StatusUnprocessableEntity, errs...)
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

// idemEntry is the remembered outcome of a request that carried an
// idempotency_id.
type idemEntry struct {
	resource  string
	status    int
	body      []byte
	expiresAt time.Time
}

// replayLocked returns the answer for a request whose resource object carries
// idempotency_id id, if Sage would not process it: the original response when the
// id was used for the same resource type within 7 days, or 422
// IdempotencyResourceMismatch when it was used for another type. s.mu must be held
// for writing, from the lookup through the store, so two concurrent requests with
// one id cannot both create.
func (s *Server) replayLocked(b *business, resource, id string) (response, bool) {
	if id == "" {
		return response{}, false
	}
	e, ok := b.idem[id]
	if !ok || !s.Now().Before(e.expiresAt) {
		return response{}, false
	}
	if e.resource != resource {
		return errorResponse(http.StatusUnprocessableEntity,
			apiErr(CodeIdempotencyMismatch, "Entity type mismatch", "")), true
	}
	return response{status: e.status, body: e.body}, true
}

// rememberLocked stores a successful outcome under id. Failures are not stored
// [I]: Sage documents replay of "the original result" only for successes, and a
// client that fixes a 422 and retries with the same deterministic id must get
// through.
func (s *Server) rememberLocked(b *business, resource, id string, resp response) {
	if id == "" || resp.status/100 != 2 {
		return
	}
	if b.idem == nil {
		b.idem = map[string]idemEntry{}
	}
	b.idem[id] = idemEntry{resource: resource, status: resp.status, body: resp.body, expiresAt: s.Now().Add(idempotencyTTL)}
}
