package sagesim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestServerErrorFault(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{Faults: Faults{ServerErrorRate: 1}})
	errs := errorsOf(t, e.expect(http.StatusInternalServerError, "POST", "/contacts", map[string]any{"contact": map[string]any{
		"name": "X", "contact_type_ids": []string{"CUSTOMER"}}}))
	if errs[0] != apiErr(CodeUnexpectedError, "An unexpected error occurred.", "") {
		t.Fatalf("errors %+v", errs)
	}
	if n := len(e.sim.Contacts(e.sim.LeadBusinessID())); n != 0 {
		t.Fatalf("a 500 before processing created %d contacts", n)
	}
	e.waitCalls("POST /v3.1/contacts", http.StatusInternalServerError, 1)
}

func TestCommitThenDropFault(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("C", "C1")
	p := goodInvoice(c.ID, goodLine(e.salesLedger(), "Widget", "20.00", "4.00"))
	p["idempotency_id"] = "11111111111111111111111111111111"
	raw, _ := json.Marshal(map[string]any{"sales_invoice": p})
	if err := e.sim.SetFaults(Faults{CommitThenDropRate: 1}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/v3.1/sales_invoices", strings.NewReader(string(raw)))
	req.Header.Set("Authorization", "Bearer "+e.access)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("client got a response (%d) although the connection should drop", resp.StatusCode)
	}
	invs := e.sim.Invoices(e.sim.LeadBusinessID())
	if len(invs) != 1 {
		t.Fatalf("the dropped create left %d invoices", len(invs))
	}
	e.waitCalls("POST /v3.1/sales_invoices", 0, 1)
	// The retry with the same idempotency_id replays and creates nothing new.
	if err := e.sim.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	var again SalesInvoice
	mustJSON(t, e.expect(http.StatusCreated, "POST", "/sales_invoices", map[string]any{"sales_invoice": p}), &again)
	if again.ID != invs[0].ID || len(e.sim.Invoices(e.sim.LeadBusinessID())) != 1 {
		t.Fatalf("retry created a duplicate")
	}
}

func TestFaultsAreReproducible(t *testing.T) {
	t.Parallel()
	statuses := func() string {
		e := loggedIn(t, Config{Seed: 42, Faults: Faults{ServerErrorRate: 0.5}})
		var b strings.Builder
		for range 40 {
			resp, _ := e.do("GET", "/tax_rates", nil)
			b.WriteString(http.StatusText(resp.StatusCode)[:1])
		}
		return b.String()
	}
	a, b := statuses(), statuses()
	if a != b {
		t.Fatalf("same seed, different faults:\n%s\n%s", a, b)
	}
	if !strings.Contains(a, "O") || !strings.Contains(a, "I") {
		t.Fatalf("rate 0.5 gave %s", a)
	}
	if err := New(Config{}).SetFaults(Faults{ServerErrorRate: 2}); err == nil {
		t.Fatal("SetFaults accepted a rate of 2")
	}
}

func TestRateLimitPerBusiness(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{Faults: Faults{RateLimitPerMinute: 3, RetryAfter: true}})
	for range 3 {
		e.expect(http.StatusOK, "GET", "/contacts", nil)
	}
	resp, body := e.do("GET", "/contacts", nil)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("4th request: %d", resp.StatusCode)
	}
	if errs := errorsOf(t, body); errs[0].DataCode != CodeTooManyRequests {
		t.Fatalf("errors %+v", errs)
	}
	if resp.Header.Get("Retry-After") != "60" {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	e.sim.Advance(59 * time.Second)
	if resp, _ := e.do("GET", "/contacts", nil); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("after 59 s: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	e.sim.Advance(time.Second) // the window has slid past the first three
	e.expect(http.StatusOK, "GET", "/contacts", nil)

	// Without RetryAfter no header is sent.
	if err := e.sim.SetFaults(Faults{RateLimitPerMinute: 1}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := e.do("GET", "/contacts", nil); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestInspectionOverHTTP(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	e.customer("C", "C1")
	get := func(path string, v any) {
		t.Helper()
		resp, err := e.http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	e.waitCalls("POST /v3.1/contacts", http.StatusCreated, 1)
	var calls []Call
	get("/__sim/calls", &calls)
	found := false
	for _, c := range calls {
		found = found || (c.Route == "POST /v3.1/contacts" && c.Status == 201 && c.Count == 1)
	}
	if !found {
		t.Fatalf("calls %+v", calls)
	}
	var contacts []Contact
	get("/__sim/businesses/"+e.sim.LeadBusinessID()+"/contacts", &contacts)
	if len(contacts) != 1 || contacts[0].Reference != "C1" {
		t.Fatalf("contacts %+v", contacts)
	}
	req, _ := http.NewRequest("PUT", e.srv.URL+"/__sim/faults", strings.NewReader(`{"rate_limit_per_minute":7}`))
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if e.sim.Faults().RateLimitPerMinute != 7 {
		t.Fatalf("faults %+v", e.sim.Faults())
	}
	resp, err = e.http.Post(e.srv.URL+"/__sim/clock/advance?d=90s", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := e.sim.Now().Sub(testStart); got != 90*time.Second {
		t.Fatalf("clock advanced %v", got)
	}
	resp, err = e.http.Post(e.srv.URL+"/__sim/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(e.sim.Contacts(e.sim.LeadBusinessID())) != 0 || len(e.sim.Calls()) != 0 {
		t.Fatal("reset kept documents or calls")
	}
	e.expect(http.StatusOK, "GET", "/contacts", nil) // still connected after Reset
}

func TestConnectionResetFault(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("C", "C1")
	if err := e.sim.SetFaults(Faults{ConnectionResetRate: 1}); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"sales_invoice": goodInvoice(c.ID, goodLine(e.salesLedger(), "Widget", "20.00", "4.00"))})
	req, _ := http.NewRequest("POST", e.srv.URL+"/v3.1/sales_invoices", strings.NewReader(string(raw)))
	req.Header.Set("Authorization", "Bearer "+e.access)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("client got a response (%d) although the connection should reset", resp.StatusCode)
	}
	// Unlike commit-then-drop, nothing was done.
	if n := len(e.sim.Invoices(e.sim.LeadBusinessID())); n != 0 {
		t.Fatalf("a reset request created %d invoices", n)
	}
}

func TestTokenServerErrorFault(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	if err := e.sim.SetFaults(Faults{TokenServerErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	status, body := e.refreshWith(e.refresh)
	var oe oauthError
	mustJSON(t, body, &oe)
	if status != http.StatusInternalServerError || oe.Error != "server_error" {
		t.Fatalf("token fault: %d %s", status, body)
	}
	// Nothing was rotated: the same refresh token still works.
	if err := e.sim.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	e.access = e.refreshed()
	e.expect(http.StatusOK, "GET", "/contacts", nil)
}

func TestLatencyJitterIsSeeded(t *testing.T) {
	t.Parallel()
	draws := func() []time.Duration {
		s := New(Config{Seed: 7})
		var out []time.Duration
		for range 20 {
			out = append(out, s.latency(Faults{Latency: time.Millisecond, LatencyJitter: 10 * time.Millisecond}))
		}
		return out
	}
	a, b := draws(), draws()
	distinct := map[time.Duration]bool{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d differs: %v %v", i, a[i], b[i])
		}
		if a[i] < time.Millisecond || a[i] >= 11*time.Millisecond {
			t.Fatalf("draw %v outside [1ms, 11ms)", a[i])
		}
		distinct[a[i]] = true
	}
	if len(distinct) < 10 {
		t.Fatalf("jitter barely varies: %v", a)
	}
	if err := New(Config{}).SetFaults(Faults{LatencyJitter: -1}); err == nil {
		t.Fatal("negative jitter accepted")
	}
}

func TestLeadBusinessChange(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	first := e.sim.LeadBusinessID()
	resp, _ := e.do("GET", "/contacts", nil)
	if resp.Header.Get("X-Business") != first {
		t.Fatalf("echo %q", resp.Header.Get("X-Business"))
	}
	second := e.sim.ChangeLeadBusiness()
	if second == first || e.sim.LeadBusinessID() != second {
		t.Fatalf("lead %s → %s", first, second)
	}
	// Requests without X-Business now go to the new lead, with the same token.
	c := e.customer("Moved", "M1")
	resp, _ = e.do("GET", "/contacts/"+c.ID, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Business") != second {
		t.Fatalf("after change: %d %q", resp.StatusCode, resp.Header.Get("X-Business"))
	}
	if len(e.sim.Contacts(second)) != 1 || len(e.sim.Contacts(first)) != 0 {
		t.Fatal("contact landed in the old lead business")
	}
	var lead Business
	mustJSON(t, e.expect(http.StatusOK, "GET", "/businesses/lead", nil), &lead)
	if lead.ID != second {
		t.Fatalf("/businesses/lead %s", lead.ID)
	}
	// A client that pins X-Business still reaches the old one.
	e.expect(http.StatusOK, "GET", "/contacts", nil, "X-Business", first)
	// Changing again wraps around; the HTTP control does the same.
	req, _ := http.NewRequest("POST", e.srv.URL+"/__sim/lead-business/change", nil)
	hr, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	if e.sim.LeadBusinessID() != first {
		t.Fatalf("wrap around: %s", e.sim.LeadBusinessID())
	}
	if err := e.sim.SetLeadBusiness("nope"); err == nil {
		t.Fatal("SetLeadBusiness accepted an unknown id")
	}
}

func TestDocumentInspectionOverHTTP(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("C", "C1")
	inv := e.createInvoice(goodInvoice(c.ID, goodLine(e.salesLedger(), "Widget", "20.00", "4.00")))
	e.pay("CUSTOMER_RECEIPT", c.ID, "10.00", inv.ID, "10.00")
	base := e.srv.URL + "/__sim/businesses/" + e.sim.LeadBusinessID()
	get := func(path string, v any) {
		t.Helper()
		resp, err := e.http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var out struct {
		Artefacts map[string]string `json:"artefacts"`
		Contacts  map[string]string `json:"contacts"`
	}
	get("/outstanding", &out)
	if out.Artefacts[inv.ID] != "14.00" || out.Contacts[c.ID] != "14.00" {
		t.Fatalf("outstanding %+v", out)
	}
	var pays []ContactPayment
	get("/contact_payments", &pays)
	if len(pays) != 1 {
		t.Fatalf("payments %+v", pays)
	}
	var cns []SalesCreditNote
	get("/sales_credit_notes", &cns)
	if cns == nil || len(cns) != 0 {
		t.Fatalf("credit notes %+v", cns)
	}
	resp, err := e.http.Get(e.srv.URL + "/__sim/businesses/nope/products")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown business: %d", resp.StatusCode)
	}
}
