package admin_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/store"
)

var (
	nextLink = regexp.MustCompile(`href="(/runs\?[^"]*)" rel="next"`)
	prevLink = regexp.MustCompile(`href="(/runs\?[^"]*)" rel="prev"`)
	runRow   = regexp.MustCompile(`<tr data-run="([0-9a-f-]{36})">`)
)

func TestConsoleRunsPage(t *testing.T) {
	t.Parallel()
	h := newBusHarness(t)
	h.createTenant(t, "acme")
	h.createTenant(t, "beta")
	for i := range 103 {
		h.run(t, "acme", "invoice.created", "invoice", int64(1000+i), fmt.Sprintf("%09d", 1000+i), store.Outcome{Status: store.RunSucceeded, SageID: "s"})
	}
	failed := h.run(t, "acme", "invoice.created", "invoice", 7, "000000007",
		store.Outcome{Status: store.RunFailed, ErrorClass: "validation", ErrorCode: "record_invalid", Message: "Sage refused <b>it</b>"})
	h.run(t, "beta", "invoice.created", "invoice", 8, "000000008", store.Outcome{Status: store.RunFailed, ErrorClass: "validation", ErrorCode: "record_invalid"})
	b := newConsoleBrowser(t, h.harness)
	csrf := b.login(testToken)

	// Paging: 104 runs of acme are 100 and 4, newest first, links both ways
	// carrying the filter.
	resp, body := b.do(http.MethodGet, "/runs?tenant=acme", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("runs: %d\n%s", resp.StatusCode, body)
	}
	rows := runRow.FindAllStringSubmatch(body, -1)
	if len(rows) != 100 || rows[0][1] != failed.ID || prevLink.MatchString(body) {
		t.Fatalf("first page: %d rows, first %v (want %s), previous link %v", len(rows), rows[0], failed.ID, prevLink.MatchString(body))
	}
	m := nextLink.FindStringSubmatch(body)
	if m == nil || !strings.Contains(m[1], "tenant=acme") {
		t.Fatalf("no next link with the filter:\n%s", body)
	}
	_, body = b.do(http.MethodGet, html.UnescapeString(m[1]), nil, nil)
	if rows := runRow.FindAllStringSubmatch(body, -1); len(rows) != 4 || nextLink.MatchString(body) {
		t.Fatalf("second page: %d rows (want 4), next link %v", len(rows), nextLink.MatchString(body))
	}
	if p := prevLink.FindStringSubmatch(body); p == nil || !strings.Contains(p[1], "tenant=acme") {
		t.Fatalf("second page has no previous link with the filter")
	}

	// Filters: code, increment id; each bad value named at its field.
	_, body = b.do(http.MethodGet, "/runs?error_code=record_invalid&tenant=acme", nil, nil)
	if rows := runRow.FindAllStringSubmatch(body, -1); len(rows) != 1 || rows[0][1] != failed.ID || !strings.Contains(body, "Sage refused &lt;b&gt;it&lt;/b&gt;") {
		t.Fatalf("filtered by code: %v", rows)
	}
	_, body = b.do(http.MethodGet, "/runs?increment_id=000000008", nil, nil)
	if rows := runRow.FindAllStringSubmatch(body, -1); len(rows) != 1 {
		t.Fatalf("filtered by increment id: %d rows", len(rows))
	}
	for q, field := range map[string]string{
		"status=bogus": "status", "since=yesterday": "since", "magento_id=-3": "magento_id", "tenant=a/b": "tenant",
		"error_code=Bad-Code": "error_code", "event=created": "event", "since=2026-05-02&until=2026-05-01": "until",
	} {
		resp, body := b.do(http.MethodGet, "/runs?"+q, nil, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="e-`+field+`"`) || !strings.Contains(body, `id="f-`+field+`" `) {
			t.Errorf("/runs?%s: %d, want 400 with the error at %s", q, resp.StatusCode, field)
		}
	}

	// Retry selected: each run's answer.
	resp, body = b.do(http.MethodPost, "/runs/retry", url.Values{"csrf": {csrf}, "run": {failed.ID, "junk"}, "back": {"/runs?tenant=acme"}}, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-retried="1"`) || !strings.Contains(body, "not a run id") {
		t.Fatalf("retry selected: %d\n%s", resp.StatusCode, body)
	}
	if r, _ := h.st.Run(t.Context(), failed.ID); r.Status != store.RunPending {
		t.Fatalf("after Retry the run is %s", r.Status)
	}
	// Without a CSRF token nothing happens.
	if resp, _ := b.do(http.MethodPost, "/runs/retry", url.Values{"run": {failed.ID}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("retry without CSRF: %d", resp.StatusCode)
	}

	// Retry all matching: a count first, then at most that many.
	filter := url.Values{"csrf": {csrf}, "tenant": {"beta"}, "status": {"failed"}}
	resp, body = b.do(http.MethodPost, "/runs/retry-matching", filter, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-matched="1"`) || !strings.Contains(body, "Retry 1 runs") {
		t.Fatalf("retry matching (count): %d\n%s", resp.StatusCode, body)
	}
	filter.Set("confirm", "1")
	resp, body = b.do(http.MethodPost, "/runs/retry-matching", filter, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-retried="1"`) {
		t.Fatalf("retry matching: %d\n%s", resp.StatusCode, body)
	}
	// Without a tenant the RPC's refusal is shown.
	resp, body = b.do(http.MethodPost, "/runs/retry-matching", url.Values{"csrf": {csrf}, "status": {"failed"}}, nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "tenant") {
		t.Fatalf("retry matching without a tenant: %d\n%s", resp.StatusCode, body)
	}
}

func TestConsoleRunPage(t *testing.T) {
	t.Parallel()
	h := newBusHarness(t)
	h.createTenant(t, "acme")
	r := h.run(t, "acme", "invoice.created", "invoice", 7, "000000007",
		store.Outcome{Status: store.RunFailed, ErrorClass: "validation", ErrorCode: "record_invalid", Message: "Sage refused it",
			AppliedQuirks: []string{"shipping_zero_rate"}})
	for i, a := range []store.Attempt{
		{Stage: "mapper", Method: "GET", Path: "/rest/V1/invoices/7", HTTPStatus: 200, Duration: 40 * time.Millisecond, Outcome: "ok"},
		{Stage: "sage-writer", Method: "POST", Path: "/sales_invoices", HTTPStatus: 422, Duration: 120 * time.Millisecond, Outcome: "failed",
			ErrorSource: "invoice_lines", RequestID: "req-9", Envelope: `[{"$message":"<script>alert(1)</script>"}]`},
	} {
		a.RunID = r.ID
		if err := h.st.RecordAttempt(t.Context(), a); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	b := newConsoleBrowser(t, h.harness)
	csrf := b.login(testToken)

	resp, body := b.do(http.MethodGet, "/runs/"+r.ID, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("run page: %d\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`<svg id="timeline"`, `data-outcome="failed"`, `data-outcome="ok"`, // the timeline
		"/sales_invoices", "422", "120 ms", "invoice_lines", "req-9", // the attempts
		`data-anchor="code-record_invalid"`, `data-anchor="class-validation"`, "<strong>Fix:</strong>", // the catalogued fix
		"shipping_zero_rate", "&lt;script&gt;alert(1)&lt;/script&gt;", `id="retry-run"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the run page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>") {
		t.Error("the run page renders a script tag from an envelope")
	}
	if !strings.Contains(body, `<p class="note" id="canonical">not recorded</p>`) {
		t.Error("a run without a recorded canonical entity does not say so")
	}

	resp, _ = b.do(http.MethodPost, "/runs/"+r.ID+"/retry", url.Values{"csrf": {csrf}}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/runs/"+r.ID {
		t.Fatalf("retry: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body = b.do(http.MethodGet, "/runs/"+r.ID, nil, nil)
	if !strings.Contains(body, "Retrying:") || !strings.Contains(body, `id="run-status">pending`) {
		t.Errorf("after Retry the page shows no flash or the run is not pending")
	}
	for path, code := range map[string]int{"/runs/not-a-uuid": http.StatusBadRequest, "/runs/9b2f7c1e-0000-4000-8000-000000000000": http.StatusNotFound} {
		if resp, _ := b.do(http.MethodGet, path, nil, nil); resp.StatusCode != code {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, code)
		}
	}
}

var (
	jobLocation = regexp.MustCompile(`^/dead-letters/jobs/([0-9a-f]+)$`)
	jobState    = regexp.MustCompile(`id="job" data-state="([a-z]+)" data-matched="(\d+)" data-moved="(\d+)" data-failed="(\d+)"`)
	dataCount   = regexp.MustCompile(`id="(?:preview|purge-count)" data-count="(\d+)"`)
)

func TestConsoleDeadLettersPage(t *testing.T) {
	t.Parallel()
	h := newBusHarness(t)
	h.deadLetters(t, "acme", 12)
	for i := range 3 {
		h.deadLetter(t, "mapper", "beta", fmt.Sprintf("44444444-0000-4000-8000-%012d", i), "payment_method_not_mapped",
			bus.OutboxSubject("beta", "invoice.created"))
	}
	b := newConsoleBrowser(t, h.harness)
	csrf := b.login(testToken)

	resp, body := b.do(http.MethodGet, "/dead-letters", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="banner" data-total="15"`) ||
		!strings.Contains(body, `data-stage="sage-writer" data-code="record_invalid" data-count="12"`) ||
		!strings.Contains(body, `data-stage="mapper" data-code="payment_method_not_mapped" data-count="3"`) ||
		!strings.Contains(body, "code <code>record_invalid</code>") {
		t.Fatalf("dead-letter page: %d\n%s", resp.StatusCode, body)
	}
	// Bad filters are named at their field.
	for q, field := range map[string]string{"stage=ingest": "stage", "tenant=a/b": "tenant", "runs=nope": "runs", "since=soon": "since", "error_code=A-B": "error_code"} {
		if resp, body := b.do(http.MethodGet, "/dead-letters?"+q, nil, nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="e-`+field+`"`) {
			t.Errorf("/dead-letters?%s: %d, want 400 naming %s", q, resp.StatusCode, field)
		}
	}

	// Preview, then replay at a rate; the job page shows progress until done.
	_, body = b.do(http.MethodGet, "/dead-letters?preview=1&tenant=acme&error_code=record_invalid", nil, nil)
	m := dataCount.FindStringSubmatch(body)
	if m == nil || m[1] != "12" {
		t.Fatalf("preview: %v\n%s", m, body)
	}
	form := url.Values{"csrf": {csrf}, "tenant": {"acme"}, "error_code": {"record_invalid"}, "expected": {"12"}}
	form.Set("rate", "0")
	if resp, body := b.do(http.MethodPost, "/dead-letters/replay", form, nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="e-rate"`) {
		t.Fatalf("replay at rate 0: %d", resp.StatusCode)
	}
	form.Set("rate", "40")
	resp, _ = b.do(http.MethodPost, "/dead-letters/replay", form, nil)
	loc := jobLocation.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc == nil {
		t.Fatalf("replay: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var state []string
	devtest.Eventually(t, "the replay job done", func() bool {
		resp, body := b.do(http.MethodGet, loc[0], nil, nil)
		state = jobState.FindStringSubmatch(body)
		if state != nil && state[1] == "running" && resp.Header.Get("Refresh") == "" {
			t.Errorf("a running job's page does not reload itself")
		}
		return state != nil && state[1] != "running"
	})
	if state[1] != "done" || state[2] != "12" || state[3] != "12" || state[4] != "0" {
		t.Fatalf("job ended %v", state)
	}
	if n := h.dlqCount(t, "acme"); n != 0 {
		t.Fatalf("%d dead letters of acme left", n)
	}

	// Purge: the count first, a button naming it; a stale count deletes
	// nothing.
	purge := url.Values{"csrf": {csrf}, "tenant": {"beta"}}
	resp, body = b.do(http.MethodPost, "/dead-letters/purge", purge, nil)
	if m := dataCount.FindStringSubmatch(body); resp.StatusCode != http.StatusOK || m == nil || m[1] != "3" || !strings.Contains(body, "Delete 3 dead letters") {
		t.Fatalf("purge count: %d %v\n%s", resp.StatusCode, m, body)
	}
	purge.Set("expected_count", "2")
	resp, _ = b.do(http.MethodPost, "/dead-letters/purge", purge, nil)
	_, body = b.do(http.MethodGet, resp.Header.Get("Location"), nil, nil)
	if n := h.dlqCount(t, "beta"); n != 3 || !strings.Contains(body, "nothing was deleted") {
		t.Fatalf("a purge confirmed with a stale count: %d left\n%s", n, body)
	}
	purge.Set("expected_count", strconv.Itoa(3))
	resp, _ = b.do(http.MethodPost, "/dead-letters/purge", purge, nil)
	_, body = b.do(http.MethodGet, resp.Header.Get("Location"), nil, nil)
	if n := h.dlqCount(t, "beta"); n != 0 || !strings.Contains(body, "deleted 3 of 3 dead letters") {
		t.Fatalf("purge: %d left\n%s", n, body)
	}
}
