package sagesim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Record holds the fields every Sage document starts with.
type Record struct {
	ID          string     `json:"id"`
	DisplayedAs string     `json:"displayed_as"`
	Path        string     `json:"$path"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	DeletedAt   *time.Time `json:"deleted_at"`
}

func (r *Record) record() *Record { return r }

// ref is the reference other records carry to this one.
func (r Record) ref() Base { return Base{ID: r.ID, DisplayedAs: r.DisplayedAs, Path: r.Path} }

// newRecord starts a document of resource created at now, with a fresh id.
func (s *Server) newRecord(resource string, now time.Time) Record {
	id := s.newID()
	return Record{ID: id, Path: "/" + resource + "/" + id, CreatedAt: now, UpdatedAt: now}
}

// document is a pointer to one of the simulator's document types.
type document interface{ record() *Record }

// store keeps one business's documents of one kind in creation order, with the
// request object each was last written from (a PUT that merges starts from it)
// and the kind's number sequence. The zero store is empty and ready.
type store[D document] struct {
	docs   map[string]D
	order  []string
	inputs map[string]map[string]json.RawMessage
	seq    int
}

// live returns the document id unless it does not exist or is deleted.
func (st *store[D]) live(id string) (D, bool) {
	d, ok := st.docs[id]
	if !ok || d.record().DeletedAt != nil {
		var none D
		return none, false
	}
	return d, true
}

// put stores d, after the others when it is new; input, when not nil, is the
// request it was written from.
func (st *store[D]) put(d D, input map[string]json.RawMessage) {
	id := d.record().ID
	if st.docs == nil {
		st.docs, st.inputs = map[string]D{}, map[string]map[string]json.RawMessage{}
	}
	if _, ok := st.docs[id]; !ok {
		st.order = append(st.order, id)
	}
	st.docs[id] = d
	if input != nil {
		st.inputs[id] = input
	}
}

// remove forgets a document altogether (a hard delete).
func (st *store[D]) remove(id string) {
	delete(st.docs, id)
	delete(st.inputs, id)
	st.order = slices.DeleteFunc(st.order, func(o string) bool { return o == id })
}

// all returns every document, deleted ones included, in creation order.
func (st *store[D]) all() []D {
	out := make([]D, 0, len(st.order))
	for _, id := range st.order {
		out = append(out, st.docs[id])
	}
	return out
}

// kind describes one kind of document: its root key (also its idempotency
// resource), its path, where a business keeps it and how its list filters.
type kind[D document] struct {
	root, resource string
	store          func(*business) *store[D]
	// match returns the list filter of a request beyond the shared parameters.
	match func(q url.Values, lp listParams) func(D) bool
	// reference is what default list items show as reference; nil shows none.
	reference func(D) string
}

// get answers GET /resource/{id}; deleted documents are not found.
func (k *kind[D]) get(s *Server) apiHandler {
	return func(r *http.Request, c *apiCall) response {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if d, ok := k.store(c.business).live(r.PathValue("id")); ok {
			return jsonResponse(http.StatusOK, d)
		}
		return notFound()
	}
}

// list answers GET /resource: the live documents changed since
// updated_or_created_since that match, in creation order, one page of them.
func (k *kind[D]) list(s *Server) apiHandler {
	return func(r *http.Request, c *apiCall) response {
		lp, bad := parseListParams(r)
		if bad != nil {
			return *bad
		}
		match := k.match(r.URL.Query(), lp)
		s.mu.RLock()
		defer s.mu.RUnlock()
		var items []D
		for _, d := range k.store(c.business).all() {
			if rec := d.record(); rec.DeletedAt == nil && lp.changedSince(rec.CreatedAt, rec.UpdatedAt) && match(d) {
				items = append(items, d)
			}
		}
		return listOf(r, k.resource, items, lp, func(d D) baseItem {
			item := baseItem{Base: d.record().ref()}
			if k.reference != nil {
				item.Reference = k.reference(d)
			}
			return item
		})
	}
}

// routes registers the kind's routes: POST and GET /resource, GET
// /resource/{id}, and PUT and DELETE /resource/{id} where given.
func (k *kind[D]) routes(s *Server, mux *http.ServeMux, create, update, remove apiHandler) {
	base := "/v3.1/" + k.resource
	mux.HandleFunc("POST "+base, s.api(create, routeOpts{}))
	mux.HandleFunc("GET "+base, s.api(k.list(s), routeOpts{}))
	mux.HandleFunc("GET "+base+"/{id}", s.api(k.get(s), routeOpts{}))
	if update != nil {
		mux.HandleFunc("PUT "+base+"/{id}", s.api(update, routeOpts{}))
	}
	if remove != nil {
		mux.HandleFunc("DELETE "+base+"/{id}", s.api(remove, routeOpts{}))
	}
}

// change answers a DELETE of the live document /resource/{id}: fn runs under
// the state lock and decides what happens.
func (k *kind[D]) change(s *Server, fn func(r *http.Request, b *business, d D, now time.Time) response) apiHandler {
	return func(r *http.Request, c *apiCall) response {
		now := s.stamp()
		s.mu.Lock()
		defer s.mu.Unlock()
		if d, ok := k.store(c.business).live(r.PathValue("id")); ok {
			return fn(r, c.business, d, now)
		}
		return notFound()
	}
}

// snapshot copies a business's documents of one kind in creation order,
// deleted ones included; an unknown business gives nil.
func snapshot[T any, D interface {
	*T
	document
}](s *Server, businessID string, k *kind[D]) (out []T) {
	s.readBusiness(businessID, func(b *business) {
		out = make([]T, 0, len(k.store(b).order))
		for _, d := range k.store(b).all() {
			out = append(out, *d)
		}
	})
	return out
}
