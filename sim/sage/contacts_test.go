package sagesim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

type listBody struct {
	Total        int              `json:"$total"`
	Page         int              `json:"$page"`
	Next         *string          `json:"$next"`
	Back         *string          `json:"$back"`
	ItemsPerPage int              `json:"$itemsPerPage"`
	Items        []map[string]any `json:"$items"`
}

// list GETs a list; each call decodes into a fresh value (json.Unmarshal would
// merge maps into reused slice elements).
func (e *env) list(path string) listBody {
	e.t.Helper()
	var lb listBody
	mustJSON(e.t, e.expect(http.StatusOK, "GET", path, nil), &lb)
	return lb
}

func TestContactCreateGetList(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("Ada Lovelace", "M1")
	if len(c.ID) != 32 || c.DisplayedAs != "Ada Lovelace (M1)" || c.Path != "/contacts/"+c.ID || !c.IsCustomer() {
		t.Fatalf("created %+v", c)
	}
	var got Contact
	mustJSON(t, e.expect(http.StatusOK, "GET", "/contacts/"+c.ID, nil), &got)
	if got.Name != "Ada Lovelace" || got.MainAddress.Country.ID != "GB" || got.CreditLimit.String() != "0.00" {
		t.Fatalf("got %+v", got)
	}
	for i := 2; i <= 25; i++ {
		e.customer(fmt.Sprintf("Customer %d", i), fmt.Sprintf("M%d", i))
	}

	page := e.list("/contacts")
	if page.Total != 25 || page.ItemsPerPage != 20 || len(page.Items) != 20 || page.Next == nil || page.Back != nil {
		t.Fatalf("page 1: total %d per %d items %d next %v", page.Total, page.ItemsPerPage, len(page.Items), page.Next)
	}
	if item := page.Items[0]; item["id"] != c.ID || item["reference"] != "M1" || item["$path"] != c.Path || item["name"] != nil {
		t.Fatalf("default list item %+v", item)
	}
	page = e.list(*page.Next)
	if page.Page != 2 || len(page.Items) != 5 || page.Next != nil || page.Back == nil {
		t.Fatalf("page 2 %+v", page)
	}
	// A page past the end gives the last page.
	page = e.list("/contacts?page=9&items_per_page=10")
	if page.Page != 3 || len(page.Items) != 5 {
		t.Fatalf("past the end %+v", page)
	}

	// search: name or reference, case-insensitive contains.
	page = e.list("/contacts?search=LOVELACE")
	if page.Total != 1 || page.Items[0]["id"] != c.ID {
		t.Fatalf("search by name %+v", page)
	}
	page = e.list("/contacts?search=m2")
	if page.Total != 7 { // M2, M20..M25
		t.Fatalf("search by reference: %d", page.Total)
	}
	page = e.list("/contacts?search=ada&attributes=all")
	if page.Items[0]["name"] != "Ada Lovelace" || page.Items[0]["main_address"] == nil {
		t.Fatalf("attributes=all %+v", page.Items[0])
	}
	page = e.list("/contacts?search=ada&attributes=name")
	if page.Items[0]["name"] != "Ada Lovelace" || page.Items[0]["main_address"] != nil {
		t.Fatalf("attributes=name %+v", page.Items[0])
	}

	// updated_or_created_since is inclusive.
	e.sim.Advance(2 * time.Minute)
	late := e.customer("Late Comer", "L1")
	since := late.CreatedAt.Format(time.RFC3339)
	page = e.list("/contacts?updated_or_created_since=" + since)
	if page.Total != 1 || page.Items[0]["id"] != late.ID {
		t.Fatalf("since %+v", page)
	}

	// PUT changes what it names.
	var upd Contact
	mustJSON(t, e.expect(http.StatusOK, "PUT", "/contacts/"+late.ID, map[string]any{"contact": map[string]any{"reference": "L2"}}), &upd)
	if upd.Reference != "L2" || upd.Name != "Late Comer" || upd.DisplayedAs != "Late Comer (L2)" {
		t.Fatalf("updated %+v", upd)
	}
}

func TestContactValidation(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	e.customer("Taken", "M1")
	cases := []struct {
		name    string
		contact map[string]any
		source  string
		message string
	}{
		{"name missing", map[string]any{"contact_type_ids": []string{"CUSTOMER"}}, "name", "This field is required."},
		{"name too long", map[string]any{"name": strings.Repeat("n", 101), "contact_type_ids": []string{"CUSTOMER"}}, "name", "Name is too long (maximum is 100 characters)"},
		{"types missing", map[string]any{"name": "X"}, "contact_type_ids", "This field is required."},
		{"reference too long", map[string]any{"name": "X", "reference": "ABCDEFGHIJK", "contact_type_ids": []string{"CUSTOMER"}}, "reference", "Reference is too long (maximum is 10 characters)"},
		{"reference taken", map[string]any{"name": "X", "reference": "m1", "contact_type_ids": []string{"CUSTOMER"}}, "reference", "Reference has already been taken"},
	}
	for _, c := range cases {
		errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/contacts", map[string]any{"contact": c.contact}))
		if errs[0].DataCode != CodeRecordInvalid || errs[0].Source != c.source || errs[0].Message != c.message {
			t.Errorf("%s: %+v", c.name, errs)
		}
	}
	errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/contacts", map[string]any{"name": "no root key"}))
	if errs[0].Source != "contact" {
		t.Errorf("missing root: %+v", errs)
	}
	// A reference of exactly 10 characters is fine.
	e.customer("Ten", "ABCDEFGHIJ")
}

func TestContactSoftDeleteReservesReference(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("Gone Soon", "M7")
	e.expect(http.StatusNoContent, "DELETE", "/contacts/"+c.ID, nil)
	e.expect(http.StatusNotFound, "GET", "/contacts/"+c.ID, nil)
	e.expect(http.StatusNotFound, "PUT", "/contacts/"+c.ID, map[string]any{"contact": map[string]any{"name": "Back"}})
	page := e.list("/contacts?search=M7")
	if page.Total != 0 {
		t.Fatalf("deleted contact listed: %+v", page)
	}
	errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/contacts", map[string]any{"contact": map[string]any{
		"name": "Gone Soon", "reference": "M7", "contact_type_ids": []string{"CUSTOMER"}}}))
	if errs[0].Message != "Reference has already been taken" || errs[0].Source != "reference" {
		t.Fatalf("reserved reference: %+v", errs)
	}
	stored := e.sim.Contacts(e.sim.LeadBusinessID())
	if len(stored) != 1 || stored[0].DeletedAt == nil {
		t.Fatalf("inspection %+v", stored)
	}

	// Naive Sage (quirk off): delete is hard and frees the reference.
	q := DefaultQuirks()
	q.SoftDeleteReservesReference = false
	e2 := loggedIn(t, Config{Quirks: &q})
	c2 := e2.customer("Gone Soon", "M7")
	e2.expect(http.StatusNoContent, "DELETE", "/contacts/"+c2.ID, nil)
	e2.customer("Gone Soon", "M7")
}

func TestContactPersonLimits(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	person := map[string]any{"name": strings.Repeat("n", 51), "telephone": strings.Repeat("1", 51), "email": strings.Repeat("e", 96) + "@x.io"}
	errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/contacts", map[string]any{"contact": map[string]any{
		"name": "Acme", "contact_type_ids": []string{"CUSTOMER"}, "main_contact_person": person}}))
	want := []APIError{
		apiErr(CodeRecordInvalid, "Name is too long (maximum is 50 characters)", "main_contact_person.name"),
		apiErr(CodeRecordInvalid, "Telephone is too long (maximum is 50 characters)", "main_contact_person.telephone"),
		apiErr(CodeRecordInvalid, "Email is too long (maximum is 100 characters)", "main_contact_person.email"),
	}
	if !slices.Equal(errs, want) {
		t.Fatalf("got %+v", errs)
	}
	person["name"], person["telephone"], person["email"] = strings.Repeat("n", 50), strings.Repeat("1", 50), "a@x.io"
	e.expect(http.StatusCreated, "POST", "/contacts", map[string]any{"contact": map[string]any{
		"name": "Acme", "contact_type_ids": []string{"CUSTOMER"}, "main_contact_person": person}})
}
