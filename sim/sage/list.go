package sagesim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

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
	all           bool      // attributes=all
	attrs         []string  // attributes=a,b
}

// parseListParams reads the shared list parameters; a non-nil response is a 422
// for a bad updated_or_created_since.
func parseListParams(r *http.Request) (listParams, *response) {
	q := r.URL.Query()
	lp := listParams{page: 1, perPage: defaultItemsPerPage, search: strings.ToLower(strings.TrimSpace(q.Get("search")))}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		lp.page = n
	}
	if n, err := strconv.Atoi(q.Get("items_per_page")); err == nil && n > 0 {
		lp.perPage = min(n, maxItemsPerPage)
	}
	if v := q.Get("updated_or_created_since"); v != "" {
		t, ok := parseSince(v)
		if !ok {
			resp := errorResponse(http.StatusUnprocessableEntity,
				apiErr(CodeRecordInvalid, "is not a valid date or date-time", "updated_or_created_since"))
			return lp, &resp
		}
		lp.since = t
	}
	switch a := q.Get("attributes"); a {
	case "":
	case "all":
		lp.all = true
	default:
		for _, f := range strings.Split(a, ",") {
			if f = strings.TrimSpace(f); f != "" {
				lp.attrs = append(lp.attrs, f)
			}
		}
	}
	return lp, nil
}

// parseSince accepts a date or a date-time with offset, as Sage does.
func parseSince(v string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// changedSince applies updated_or_created_since, which is inclusive.
func (lp listParams) changedSince(created, updated time.Time) bool {
	if lp.since.IsZero() {
		return true
	}
	return !created.Before(lp.since) || !updated.Before(lp.since)
}

// project turns full records into list items: full with attributes=all, the
// base attributes (id, displayed_as, $path, plus what short adds) by default, or
// the base plus the named attributes. $items is an array even when empty.
func project[T any](full []T, lp listParams, short func(T) baseItem) any {
	switch {
	case lp.all:
		return append(make([]T, 0, len(full)), full...)
	case len(lp.attrs) == 0:
		out := make([]baseItem, len(full))
		for i, f := range full {
			out[i] = short(f)
		}
		return out
	}
	out := make([]map[string]json.RawMessage, 0, len(full))
	for _, f := range full {
		b, err := json.Marshal(f)
		if err != nil {
			continue
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		item := map[string]json.RawMessage{}
		for _, k := range append([]string{"id", "displayed_as", "$path"}, lp.attrs...) {
			if v, ok := m[k]; ok {
				item[k] = v
			}
		}
		out = append(out, item)
	}
	return out
}

// baseItem is the default list item: Sage's base attributes, plus reference where
// the record has one (a convenience for reference lookups).
type baseItem struct {
	Base
	Reference string `json:"reference,omitempty"`
}

// listOf answers a list request over records already filtered and ordered with
// one page of them. A page past the end gives the last page, as on Sage. $next
// and $back are relative to the API base and keep the other query parameters.
func listOf[T any](r *http.Request, resource string, items []T, lp listParams, short func(T) baseItem) response {
	total := len(items)
	pages := max((total+lp.perPage-1)/lp.perPage, 1)
	page := min(lp.page, pages)
	start := (page - 1) * lp.perPage
	env := listEnvelope{Total: total, Page: page, ItemsPerPage: lp.perPage,
		Items: project(items[start:min(start+lp.perPage, total)], lp, short)}
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
}
