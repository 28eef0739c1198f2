package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/policy"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/mapper"
	magentosim "github.com/ledgersync/ledger/sim/magento"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// The console's dead-letter replay at scale: 10,000 sage-writer dead letters
// (4 tenants, each its own shop and Sage business, 2,500 customers each)
// are previewed and replayed through the console's HTTP pages, as an
// operator's browser does, at replayTestRate per second. The preview must
// equal what moved, the DLQ must be empty for the filter afterwards, every
// run must succeed and reach its shop as synced, and Sage must hold each
// contact once.
//
// The dead letters are published the way libs/bus dead-letters a write the
// sage-writer gave up on (its deadLetter: the same fields, subject, type and
// headers), after a Sage outage (sage_server_error after every delivery), and
// their originals are the SageWrites the mapper builds for these customers
// (mapper.Builder), so the replay exercises the real writer, Sage and
// statecallback path. Producing them through the writer itself would cost
// 10,000 more failing writes for no more coverage of the replay.
//
// Timing: the dev stack paces each Sage business at 100 requests/s
// (stack.DevBusinessPerMinute), so four businesses take 400 writes/s; the
// replay runs at that rate (25 s for 10,000).
const (
	replayTestTenants   = 4
	replayTestPerTenant = 2500
	replayTestRate      = 400
)

func TestConsoleReplaysTenThousandDeadLetters(t *testing.T) {
	// Its own stack: it runs beside the other heavy end-to-end tests.
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	st, _ := startStack(t, ctx, stack.Options{})
	t.Cleanup(st.Close)

	type rig struct {
		id, business string
		shop         *magentosim.Shop
	}
	var rigs []rig
	for i := range replayTestTenants {
		r := rig{id: fmt.Sprintf("replay%d", i), shop: st.Shop}
		shopURL := st.ShopURL
		user := ""
		if i > 0 {
			var err error
			if r.shop, shopURL, err = st.AddShop("magento-sim-"+r.id, magentosim.Config{DrainInterval: 500 * time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			user = r.id + "-owner"
		}
		if err := st.OnboardShop(ctx, r.id, "Shop "+r.id, r.shop, shopURL, user); err != nil {
			t.Fatalf("onboarding %s: %v", r.id, err)
		}
		tn, err := st.Store.Tenant(ctx, r.id)
		if err != nil {
			t.Fatal(err)
		}
		r.business = tn.Binding.SageBusinessID
		rigs = append(rigs, r)
	}

	// The outage: Sage answers 500 to every call while the writes were
	// attempted, so they were dead-lettered.
	if err := st.Sage.SetFaults(withServerErrors(st.Sage.Faults(), 1)); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for _, r := range rigs {
		publishOutageDeadLetters(t, ctx, st, r.id, replayTestPerTenant)
	}
	t.Logf("published %d dead letters in %v", replayTestTenants*replayTestPerTenant, time.Since(began).Round(time.Millisecond))
	// The fix: the outage is over.
	if err := st.Sage.SetFaults(withServerErrors(st.Sage.Faults(), 0)); err != nil {
		t.Fatal(err)
	}

	c := newReplayConsole(t, ctx, st)
	filter := url.Values{"stage": {"sage-writer"}, "error_code": {"sage_server_error"}}
	page := c.get("/dead-letters?preview=1&" + filter.Encode())
	preview := replayPreviewCount.FindStringSubmatch(page)
	if preview == nil {
		t.Fatalf("no preview on the dead-letter page:\n%s", page)
	}
	previewed, _ := strconv.Atoi(preview[1])
	if want := replayTestTenants * replayTestPerTenant; previewed != want {
		t.Fatalf("the preview counts %d dead letters, want %d", previewed, want)
	}

	form := url.Values{"csrf": {c.csrf(page)}, "rate": {strconv.Itoa(replayTestRate)}, "expected": {preview[1]}}
	for k, v := range filter {
		form[k] = v
	}
	jobURL := c.post("/dead-letters/replay", form)
	if !strings.HasPrefix(jobURL, "/dead-letters/jobs/") {
		t.Fatalf("starting the replay led to %q", jobURL)
	}
	began = time.Now()
	var job []string
	devtest.Eventually(t, "the replay job finished", func() bool {
		job = replayJobState.FindStringSubmatch(c.get(jobURL))
		return job != nil && job[1] != "running"
	}, devtest.Until(ctx), devtest.Explain(func() string { return fmt.Sprintf("job %v", job) }))
	took := time.Since(began)
	matched, _ := strconv.Atoi(job[2])
	moved, _ := strconv.Atoi(job[3])
	failed, _ := strconv.Atoi(job[4])
	t.Logf("replay job %s: matched %d, moved %d, failed %d in %v (%.0f/s, rate %d/s)",
		job[1], matched, moved, failed, took.Round(time.Millisecond), float64(moved)/took.Seconds(), replayTestRate)
	if job[1] != "done" || moved != previewed || matched != previewed || failed != 0 {
		t.Fatalf("the replay ended %s with %d matched, %d moved, %d failed; the preview said %d", job[1], matched, moved, failed, previewed)
	}
	if minimum := time.Duration(float64(previewed)/replayTestRate*0.9) * time.Second; took < minimum {
		t.Errorf("%d dead letters moved in %v: faster than %d/s allows", moved, took, replayTestRate)
	}
	if page := c.get("/dead-letters?preview=1&" + filter.Encode()); !strings.Contains(page, `id="preview" data-count="0"`) {
		t.Errorf("dead letters still match the filter after the replay")
	}

	// Downstream: every run succeeded once, every shop row is synced, and
	// Sage holds each customer's contact exactly once.
	devtest.Eventually(t, "every replayed run succeeded", func() bool {
		var n int
		err := st.Store.Pool().QueryRow(ctx, `SELECT count(*) FROM sync_runs WHERE tenant_id LIKE 'replay%' AND status = 'succeeded'`).Scan(&n)
		return err == nil && n == previewed
	}, devtest.Until(ctx))
	for _, r := range rigs {
		devtest.Eventually(t, r.id+"'s shop shows every customer synced", func() bool {
			synced := 0
			for _, row := range r.shop.SyncStates() {
				if row.EntityType == "customer" && row.SyncStatus == "synced" {
					synced++
				}
			}
			return synced == replayTestPerTenant
		}, devtest.Until(ctx))
		refs := map[string]int{}
		for _, ct := range st.Sage.Contacts(r.business) {
			refs[ct.Reference]++
		}
		dups := 0
		for ref, n := range refs {
			if n > 1 {
				dups += n - 1
				t.Errorf("%s's Sage business holds contact %s %d times", r.id, ref, n)
			}
		}
		if len(refs) != replayTestPerTenant || dups != 0 {
			t.Errorf("%s's Sage business holds %d contacts (%d duplicates), want %d", r.id, len(refs), dups, replayTestPerTenant)
		}
	}
	t.Logf("from the replay's start to the last shop row synced: %v", time.Since(began).Round(time.Millisecond))
}

func withServerErrors(f sagesim.Faults, rate float64) sagesim.Faults {
	f.ServerErrorRate = rate
	return f
}

// publishOutageDeadLetters makes n failed customer runs of tenant and
// publishes the dead letter the sage-writer would have left for each.
func publishOutageDeadLetters(t *testing.T, ctx context.Context, st *stack.Stack, tenant string, n int) {
	t.Helper()
	// The runs, as the writer left them: failed with the outage's code.
	_, err := st.Store.Pool().Exec(ctx, `INSERT INTO sync_runs (sync_run_id, tenant_id, event, idempotency_key, entity_type,
			magento_entity_id, website_id, store_id, status, error_class, error_code, last_error, attempts, created_at, started_at, finished_at)
		SELECT gen_random_uuid(), $1, 'customer.upserted', 'customer.upserted:' || id, 'customer', id, 1, 1, 'failed',
			'provider', 'sage_server_error', 'Sage answered 500 UnexpectedError', 10, now(), now(), now()
		FROM generate_series(1::bigint, $2::bigint) AS id`, tenant, n)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.Store.Pool().Query(ctx, `SELECT sync_run_id::text, magento_entity_id FROM sync_runs WHERE tenant_id = $1 ORDER BY magento_entity_id`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		id  string
		mid int64
	}
	var runs []run
	for rows.Next() {
		var r run
		if err := rows.Scan(&r.id, &r.mid); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	rows.Close()
	if len(runs) != n {
		t.Fatalf("%s has %d runs, want %d", tenant, len(runs), n)
	}
	doc, err := st.Store.Policy(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	b := mapper.Builder{TenantID: tenant, Policy: pol, BaseCurrency: "GBP"}
	first := timestamppb.New(time.Now().Add(-10 * time.Minute))
	publish := func(r run) error {
		w, err := b.Customer(ctx, magento.Contact{MagentoID: r.mid, Email: fmt.Sprintf("customer%d@%s.example", r.mid, tenant),
			FirstName: "Customer", LastName: strconv.FormatInt(r.mid, 10), WebsiteID: 1})
		if err != nil {
			return fmt.Errorf("building the SageWrite of customer %d: %w", r.mid, err)
		}
		w.SyncRunId, w.Event = r.id, "customer.upserted"
		orig, err := proto.Marshal(w)
		if err != nil {
			return err
		}
		// As libs/bus deadLetter builds it for the sage-writer.
		dl := &ledgerv1.DeadLetter{
			Stage: "sage-writer", TenantId: tenant, SyncRunId: r.id,
			OriginalSubject: bus.SageSubject(tenant, "customer"), OriginalType: "ledger.v1.SageWrite", Original: orig,
			ErrorClass: "provider", ErrorCode: "sage_server_error",
			Message: "Sage answered 500 UnexpectedError", Attempts: 10, FirstFailureAt: first, LastFailureAt: timestamppb.Now(),
			HttpStatus: 500,
		}
		_, err = bus.Publish(ctx, st.JS, bus.DLQSubject("sage-writer", tenant, "customer"), dl, "")
		return err
	}
	// Several publishers at once: each waits for its acknowledgement, as
	// the consumers' dead-lettering does, but the test need not wait for
	// 2,500 round trips in a row.
	const publishers = 8
	errs := make(chan error, publishers)
	for p := range publishers {
		go func() {
			for i := p; i < len(runs); i += publishers {
				if err := publish(runs[i]); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range publishers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

var (
	replayPreviewCount = regexp.MustCompile(`id="preview" data-count="(\d+)"`)
	replayJobState     = regexp.MustCompile(`id="job" data-state="([a-z]+)" data-matched="(\d+)" data-moved="(\d+)" data-failed="(\d+)"`)
	replayCSRF         = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// replayConsole is a plain HTTP client of the console, logged in through
// its login form (session cookie, CSRF tokens from the pages).
type replayConsole struct {
	t    *testing.T
	ctx  context.Context
	base string
	c    *http.Client
}

func newReplayConsole(t *testing.T, ctx context.Context, st *stack.Stack) *replayConsole {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &replayConsole{t: t, ctx: ctx, base: st.AdminHTTPURL, c: &http.Client{Timeout: time.Minute, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	login := c.get("/login")
	if loc := c.post("/login", url.Values{"csrf": {c.csrf(login)}, "token": {st.AdminToken}, "next": {"/dead-letters"}}); loc != "/dead-letters" {
		t.Fatalf("login led to %q", loc)
	}
	return c
}

func (c *replayConsole) do(method, path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(c.ctx, method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", c.base)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

// get fetches a console page, which must answer 200.
func (c *replayConsole) get(path string) string {
	c.t.Helper()
	resp, body := c.do(http.MethodGet, path, nil)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: HTTP %d\n%s", path, resp.StatusCode, body)
	}
	return body
}

// post submits a console form, which must answer with a redirect; it returns
// where to.
func (c *replayConsole) post(path string, form url.Values) string {
	c.t.Helper()
	resp, body := c.do(http.MethodPost, path, form)
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("POST %s: HTTP %d\n%s", path, resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

func (c *replayConsole) csrf(page string) string {
	c.t.Helper()
	m := replayCSRF.FindStringSubmatch(page)
	if m == nil {
		c.t.Fatalf("no form token in the page:\n%s", page)
	}
	return m[1]
}
