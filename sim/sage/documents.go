package sagesim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// Record holds the fields every Sage document starts with.
type Record struct {
	Base
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	DeletedAt *time.Time `json:"deleted_at"`
}

func (r *Record) record() *Record { return r }

// newRecord starts a document of resource created at now, with a fresh id.
func (s *Server) newRecord(resource string, now time.Time) Record {
	id := s.newID()
	return Record{Base: Base{ID: id, Path: "/" + resource + "/" + id}, CreatedAt: now, UpdatedAt: now}
}

type document interface{ record() *Record }

// store keeps one business's documents of one kind in creation order, with the
// request object each was last written from (a PUT that merges starts from it)
// and the kind's number sequence. The zero store is ready.
type store[D document] struct {
	docs   map[string]D
	order  []string
	inputs map[string]map[string]json.RawMessage
	seq    int
}

// live returns the document id and whether it exists and is not deleted.
func (st *store[D]) live(id string) (D, bool) {
	d, ok := st.docs[id]
	return d, ok && d.record().DeletedAt == nil
}

// put stores d, last when it is new, with the request it was written from
// unless input is nil.
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

// routes registers POST, GET /resource[/{id}], and PUT and DELETE where
// given. GET answers live documents only, in creation order.
func (k *kind[D]) routes(s *Server, mux *http.ServeMux, create, update, remove apiHandler) {
	base := "/v3.1/" + k.resource
	mux.HandleFunc("POST "+base, s.api(create))
	listRoute(s, mux, k.resource, func(b *business) []D { return k.store(b).all() }, func(q url.Values, lp listParams) func(D) bool {
		match := k.match(q, lp)
		return func(d D) bool {
			rec := d.record()
			if !lp.deletedSince.IsZero() {
				// deleted_since lists deleted documents only (exclusive).
				return rec.DeletedAt != nil && rec.DeletedAt.After(lp.deletedSince) && match(d)
			}
			return rec.DeletedAt == nil && lp.changedSince(rec.CreatedAt, rec.UpdatedAt) && match(d)
		}
	}, func(d D) baseItem {
		item := baseItem{Base: d.record().ref()}
		if k.reference != nil {
			item.Reference = k.reference(d)
		}
		return item
	})
	mux.HandleFunc("GET "+base+"/{id}", s.api(k.change(s, false, func(_ *http.Request, _ *business, d D, _ time.Time) *response {
		return jsonResponse(http.StatusOK, d)
	})))
	for method, h := range map[string]apiHandler{"PUT": update, "DELETE": remove} {
		if h != nil {
			mux.HandleFunc(method+" "+base+"/{id}", s.api(h))
		}
	}
}

// change answers a request on the live document /resource/{id} with fn, under
// the state lock (for writing if write).
func (k *kind[D]) change(s *Server, write bool, fn func(r *http.Request, b *business, d D, now time.Time) *response) apiHandler {
	return func(r *http.Request, c *apiCall) *response {
		now := s.stamp()
		lock, unlock := s.mu.RLock, s.mu.RUnlock
		if write {
			lock, unlock = s.mu.Lock, s.mu.Unlock
		}
		lock()
		defer unlock()
		if d, ok := k.store(c.business).live(r.PathValue("id")); ok {
			return fn(r, c.business, d, now)
		}
		return notFound()
	}
}

// snapshot copies a business's documents of one kind (see Server.Contacts).
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

// Amounts are the net, tax and total of a document or a line, in its currency
// and, at its exchange rate, in the base currency.
type Amounts struct {
	NetAmount               money.Amount `json:"net_amount"`
	TaxAmount               money.Amount `json:"tax_amount"`
	TotalAmount             money.Amount `json:"total_amount"`
	BaseCurrencyNetAmount   money.Amount `json:"base_currency_net_amount"`
	BaseCurrencyTaxAmount   money.Amount `json:"base_currency_tax_amount"`
	BaseCurrencyTotalAmount money.Amount `json:"base_currency_total_amount"`
}

func amounts(net, tax, rate money.Amount) Amounts {
	total := net.Add(tax)
	return Amounts{net, tax, total, toBase(net, rate), toBase(tax, rate), toBase(total, rate)}
}

// toBase converts an amount at the document's rate: round(amount ×
// exchange_rate, 2) [I] (Sage's direction is unconfirmed).
func toBase(a, rate money.Amount) money.Amount { return a.MulDecimal(rate.Decimal()).Cents() }

// Artefact is what sales documents and payments on account share, the things
// payments and allocations settle: the customer, the date, the amounts and
// what is left to pay, with the status that follows from it.
type Artefact struct {
	Contact          Base   `json:"contact"`
	ContactName      string `json:"contact_name"`
	ContactReference string `json:"contact_reference"`
	Date             string `json:"date"`
	Reference        string `json:"reference"`
	Amounts
	Currency                      Base         `json:"currency"`
	ExchangeRate                  string       `json:"exchange_rate"`
	OutstandingAmount             money.Amount `json:"outstanding_amount"`
	BaseCurrencyOutstandingAmount money.Amount `json:"base_currency_outstanding_amount"`
	Status                        Base         `json:"status"`
	rate                          money.Amount // ExchangeRate as a number
}

// settle lowers what is left to pay by amount (a negative amount reverses a
// settlement): the status is UNPAID while nothing is settled, then PART_PAID,
// then PAID.
func (a *Artefact) settle(amount money.Amount) {
	a.OutstandingAmount = a.OutstandingAmount.Sub(amount)
	a.BaseCurrencyOutstandingAmount = toBase(a.OutstandingAmount, a.rate)
	switch {
	case a.OutstandingAmount.Equal(a.TotalAmount):
		a.Status = status("UNPAID")
	case a.OutstandingAmount.Sign() == 0:
		a.Status = status("PAID")
	default:
		a.Status = status("PART_PAID")
	}
}

// Pagination limits from Sage's pagination guide.
const (
	defaultItemsPerPage = 20
	maxItemsPerPage     = 200
)

// listEnvelope is Sage's list response.
type listEnvelope struct {
	Total        int     `json:"$total"`
	Page         int     `json:"$page"`
	Next         *string `json:"$next"`
	Back         *string `json:"$back"`
	ItemsPerPage int     `json:"$itemsPerPage"`
	Items        any     `json:"$items"`
}

// listParams are the query parameters every list shares.
type listParams struct {
	page, perPage int
	search        string
	since         time.Time // zero: no updated_or_created_since filter
	deletedSince  time.Time // non-zero: list the documents deleted after it instead
	all           bool      // attributes=all
	attrs         []string  // attributes=a,b
}

// parseListParams reads the shared list parameters, or answers 422.
func parseListParams(r *http.Request) (listParams, *response) {
	q := r.URL.Query()
	lp := listParams{page: 1, perPage: defaultItemsPerPage, search: strings.ToLower(strings.TrimSpace(q.Get("search"))),
		all: q.Get("attributes") == "all"}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		lp.page = n
	}
	if n, err := strconv.Atoi(q.Get("items_per_page")); err == nil && n > 0 {
		lp.perPage = min(n, maxItemsPerPage)
	}
	// updated_or_created_since (inclusive) and deleted_since (exclusive) are a
	// date or a date-time with offset, as on Sage.
	for _, p := range []struct {
		name string
		into *time.Time
	}{{"updated_or_created_since", &lp.since}, {"deleted_since", &lp.deletedSince}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		var err error
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", time.DateOnly} {
			if *p.into, err = time.Parse(layout, v); err == nil {
				break
			}
		}
		if err != nil {
			return lp, unprocessable(apiErr(CodeRecordInvalid, "is not a valid date or date-time", p.name))
		}
	}
	for _, f := range strings.Split(q.Get("attributes"), ",") {
		if f = strings.TrimSpace(f); f != "" && !lp.all {
			lp.attrs = append(lp.attrs, f)
		}
	}
	return lp, nil
}

// changedSince applies updated_or_created_since, which is inclusive.
func (lp listParams) changedSince(created, updated time.Time) bool {
	return lp.since.IsZero() || !created.Before(lp.since) || !updated.Before(lp.since)
}

// baseItem is the default list item: Sage's base attributes, plus reference where
// the record has one (a convenience for lookups).
type baseItem struct {
	Base
	Reference string `json:"reference,omitempty"`
}

// listRoute registers GET /v3.1/resource: one page of the business's items
// that match (nil keeps all). A page past the end gives the last page, as on
// Sage; $next and $back are relative to the API base and keep the other query
// parameters. Items are full with attributes=all, else the base attributes
// (and what short adds) plus any named ones; $items is an array even when empty.
func listRoute[T any](s *Server, mux *http.ServeMux, resource string, all func(*business) []T,
	match func(url.Values, listParams) func(T) bool, short func(T) baseItem) {
	mux.HandleFunc("GET /v3.1/"+resource, s.api(func(r *http.Request, c *apiCall) *response {
		lp, bad := parseListParams(r)
		if bad != nil {
			return bad
		}
		keep := func(T) bool { return true }
		if match != nil {
			keep = match(r.URL.Query(), lp)
		}
		s.mu.RLock()
		defer s.mu.RUnlock()
		var items []T
		for _, it := range all(c.business) {
			if keep(it) {
				items = append(items, it)
			}
		}
		total := len(items)
		pages := max((total+lp.perPage-1)/lp.perPage, 1)
		page := min(lp.page, pages)
		start := (page - 1) * lp.perPage
		full := items[start:min(start+lp.perPage, total)]
		env := listEnvelope{Total: total, Page: page, ItemsPerPage: lp.perPage, Items: append(make([]T, 0, len(full)), full...)}
		if !lp.all {
			out := make([]any, 0, len(full))
			for _, f := range full {
				var item any = short(f)
				if len(lp.attrs) > 0 {
					var m map[string]json.RawMessage
					b, _ := json.Marshal(f)
					_ = json.Unmarshal(b, &m)
					picked := map[string]json.RawMessage{}
					for _, k := range append([]string{"id", "displayed_as", "$path"}, lp.attrs...) {
						if v, ok := m[k]; ok {
							picked[k] = v
						}
					}
					item = picked
				}
				out = append(out, item)
			}
			env.Items = out
		}
		link := func(p int) *string {
			q := r.URL.Query()
			q.Set("page", strconv.Itoa(p))
			q.Set("items_per_page", strconv.Itoa(lp.perPage))
			s := "/" + resource + "?" + q.Encode()
			return &s
		}
		if page < pages {
			env.Next = link(page + 1)
		}
		if page > 1 {
			env.Back = link(page - 1)
		}
		return jsonResponse(http.StatusOK, env)
	}))
}
