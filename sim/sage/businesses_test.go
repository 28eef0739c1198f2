package sagesim

import (
	"net/http"
	"testing"
)

func TestXBusinessSelectionAndEcho(t *testing.T) {
	t.Parallel()
	const first, second = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	e := loggedIn(t, Config{Businesses: []BusinessConfig{{ID: first, Name: "North Ltd"}, {ID: second, Name: "South Ltd", Lead: true}}})
	if e.sim.LeadBusinessID() != second {
		t.Fatalf("lead %s", e.sim.LeadBusinessID())
	}

	resp, _ := e.do("GET", "/contacts", nil)
	if got := resp.Header.Get("X-Business"); got != second {
		t.Fatalf("no header: X-Business %q, want lead %s", got, second)
	}
	if resp.Header.Get("x_request_id") == "" {
		t.Fatal("missing x_request_id header")
	}
	e.customer("North Customer", "N1")
	resp, _ = e.do("POST", "/contacts", map[string]any{"contact": map[string]any{"name": "Only North", "contact_type_ids": []string{"CUSTOMER"}}},
		"X-Business", first)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Business") != first {
		t.Fatalf("create in first: %d %q", resp.StatusCode, resp.Header.Get("X-Business"))
	}
	if n := len(e.sim.Contacts(first)); n != 1 {
		t.Fatalf("first business has %d contacts", n)
	}
	if n := len(e.sim.Contacts(second)); n != 1 {
		t.Fatalf("lead business has %d contacts", n)
	}

	// /businesses does not echo X-Business and lists both.
	resp, body := e.do("GET", "/businesses", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Business") != "" {
		t.Fatalf("/businesses: %d X-Business=%q", resp.StatusCode, resp.Header.Get("X-Business"))
	}
	var env struct {
		Total int        `json:"$total"`
		Items []Business `json:"$items"`
	}
	mustJSON(t, body, &env)
	if env.Total != 2 || env.Items[0].ID != first || env.Items[1].Subscriptions[0].ID != "ACCOUNTING" {
		t.Fatalf("businesses %s", body)
	}
	var lead Business
	mustJSON(t, e.expect(http.StatusOK, "GET", "/businesses/lead", nil), &lead)
	if lead.ID != second || lead.Name != "South Ltd" {
		t.Fatalf("lead %+v", lead)
	}

	// Unknown business: 404; another user's business: 403. Both with the array.
	errs := errorsOf(t, e.expect(http.StatusNotFound, "GET", "/contacts", nil, "X-Business", "cccccccccccccccccccccccccccccccc"))
	if errs[0].DataCode != CodeRecordNotFound {
		t.Fatalf("unknown business %+v", errs)
	}
	other := e.authorize(DefaultClientID, testRedirect, "", "someone-else")
	tok := e.exchangeOK(other)
	e2 := *e
	e2.access = tok.AccessToken
	var otherLead Business
	mustJSON(t, e2.expect(http.StatusOK, "GET", "/businesses/lead", nil), &otherLead)
	if otherLead.ID == first || otherLead.ID == second {
		t.Fatal("a new user must get its own businesses")
	}
	e.expect(http.StatusForbidden, "GET", "/contacts", nil, "X-Business", otherLead.ID)
}

func TestNonJSONBodyIs415(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	errs := errorsOf(t, e.expect(http.StatusUnsupportedMediaType, "POST", "/contacts", `{"contact":{}}`, "Content-Type", "text/plain"))
	if errs[0].DataCode != CodeUnsupportedMediaType {
		t.Fatalf("errors %+v", errs)
	}
	errs = errorsOf(t, e.expect(http.StatusBadRequest, "POST", "/contacts", `{"contact":`))
	if errs[0].DataCode != CodeBadRequest {
		t.Fatalf("malformed JSON %+v", errs)
	}
	e.expect(http.StatusNotFound, "GET", "/no_such_resource", nil)
}

func TestReferenceData(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	var rates struct {
		Items []TaxRate `json:"$items"`
	}
	mustJSON(t, e.expect(http.StatusOK, "GET", "/tax_rates?attributes=all", nil), &rates)
	want := map[string]string{"GB_STANDARD": "20.00", "GB_LOWER": "5.00", "GB_ZERO": "0.00", "GB_EXEMPT": "0.00", "GB_NO_TAX": "0.00"}
	if len(rates.Items) != len(want) {
		t.Fatalf("tax rates %+v", rates.Items)
	}
	for _, r := range rates.Items {
		if want[r.ID] != r.Percentage.String() {
			t.Errorf("%s: %s", r.ID, r.Percentage)
		}
	}
	var accounts struct {
		Total int             `json:"$total"`
		Items []LedgerAccount `json:"$items"`
	}
	mustJSON(t, e.expect(http.StatusOK, "GET", "/ledger_accounts?visible_in=sales&attributes=all", nil), &accounts)
	found := false
	for _, a := range accounts.Items {
		if !a.VisibleInSales || len(a.ID) != 32 {
			t.Errorf("account %+v", a)
		}
		found = found || (a.NominalCode == 4000 && a.Name == "Sales Type A")
	}
	if !found {
		t.Fatal("Sales Type A (4000) missing")
	}
	var fs FinancialSettings
	mustJSON(t, e.expect(http.StatusOK, "GET", "/financial_settings", nil), &fs)
	if fs.BaseCurrency.ID != "GBP" {
		t.Fatalf("base currency %+v", fs.BaseCurrency)
	}
	for _, p := range []string{"/bank_accounts", "/payment_methods", "/currencies", "/business_settings"} {
		e.expect(http.StatusOK, "GET", p, nil)
	}
}
