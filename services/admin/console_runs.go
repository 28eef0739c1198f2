package admin

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// The console's runs page (GET /runs): every filter of ListRuns, paged newest
// first, with bulk Retry (POST /runs/retry) and "Retry all matching" with a
// dry-run count first (POST /runs/retry-matching).

const (
	// consoleRunsPage is how many runs one page shows.
	consoleRunsPage = 100
	// maxPageHistory bounds the previous-page tokens a runs URL carries (the
	// "newest" link always goes back to the first page).
	maxPageHistory = 30
)

// runsForm is the runs filter as the operator typed it (query or form
// fields of the same names).
type runsForm struct {
	Tenant, Status, EntityType, Event, ErrorClass, ErrorCode, SkipReason string
	MagentoID, IncrementID, Since, Until                                 string
}

// runsFormFields are the form's field names, in the order the RPC checks them.
var runsFormFields = []string{"tenant", "status", "entity_type", "event", "error_class", "error_code", "skip_reason",
	"magento_id", "increment_id", "since", "until"}

func readRunsForm(get func(string) string) runsForm {
	v := func(k string) string { return strings.TrimSpace(get(k)) }
	return runsForm{Tenant: v("tenant"), Status: v("status"), EntityType: v("entity_type"), Event: v("event"),
		ErrorClass: v("error_class"), ErrorCode: v("error_code"), SkipReason: v("skip_reason"),
		MagentoID: v("magento_id"), IncrementID: v("increment_id"), Since: v("since"), Until: v("until")}
}

// values is the filter as URL parameters (empty ones left out).
func (f runsForm) values() filterValues {
	return newFilterValues(runsFormFields, f.Tenant, f.Status, f.EntityType, f.Event, f.ErrorClass, f.ErrorCode,
		f.SkipReason, f.MagentoID, f.IncrementID, f.Since, f.Until)
}

// Query is the filter as a URL query ("" when empty).
func (f runsForm) Query() string { return f.values().Query() }

// Empty reports whether no filter is set.
func (f runsForm) Empty() bool { return f.values().Empty() }

// Fields lists the set filters as name/value pairs (hidden form fields).
func (f runsForm) Fields() [][2]string { return f.values().Fields() }

// filterValues are the set fields of a console filter form, in the form's
// field order: the runs page's and the dead-letter page's.
type filterValues struct {
	names []string
	q     url.Values
}

// newFilterValues pairs names with vals (same order), leaving empty ones out.
func newFilterValues(names []string, vals ...string) filterValues {
	fv := filterValues{names: names, q: url.Values{}}
	for i, v := range vals {
		if v != "" {
			fv.q.Set(names[i], v)
		}
	}
	return fv
}

// Query is the set fields as a URL query ("" when none).
func (fv filterValues) Query() string { return fv.q.Encode() }

// Empty reports whether no field is set.
func (fv filterValues) Empty() bool { return len(fv.q) == 0 }

// Fields lists the set fields as name/value pairs in the form's order.
func (fv filterValues) Fields() [][2]string {
	var out [][2]string
	for _, k := range fv.names {
		if v := fv.q.Get(k); v != "" {
			out = append(out, [2]string{k, v})
		}
	}
	return out
}

// timeLayouts are what a since/until field accepts, read as UTC unless it
// names its zone.
var timeLayouts = []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"}

// parseFormTime reads a since/until field.
func parseFormTime(v string) (time.Time, bool) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// fieldErrors are inline errors by form field.
type fieldErrors map[string]string

// filter turns the form into a RunFilter; what only the form can get wrong
// (numbers, times) is reported here, the rest by the RPC.
func (f runsForm) filter() (*ledgerv1.RunFilter, fieldErrors) {
	errs := fieldErrors{}
	rf := &ledgerv1.RunFilter{TenantId: f.Tenant, Status: f.Status, EntityType: f.EntityType, Event: f.Event,
		ErrorClass: f.ErrorClass, ErrorCode: f.ErrorCode, SkipReason: f.SkipReason, IncrementId: f.IncrementID}
	if f.MagentoID != "" {
		n, err := strconv.ParseInt(f.MagentoID, 10, 64)
		if err != nil || n <= 0 {
			errs["magento_id"] = "magento_entity_id " + strconv.Quote(f.MagentoID) + ": use Magento's entity_id, a positive number (for a document number such as 000000042 use the increment id field)"
		} else {
			rf.MagentoEntityId = n
		}
	}
	for _, c := range []struct {
		name, v string
		dst     **timestamppb.Timestamp
	}{{"since", f.Since, &rf.Since}, {"until", f.Until, &rf.Until}} {
		if c.v == "" {
			continue
		}
		t, ok := parseFormTime(c.v)
		if !ok {
			errs[c.name] = c.name + " " + strconv.Quote(c.v) + ": use a UTC time such as 2026-05-01T09:00 or a day such as 2026-05-01"
			continue
		}
		*c.dst = timestamppb.New(t)
	}
	return rf, errs
}

// rpcFieldPrefixes map the field an RPC error message starts with to the
// form field it is about.
var rpcFieldPrefixes = []struct{ prefix, field string }{
	{"tenant_id", "tenant"}, {"status", "status"}, {"entity_type", "entity_type"}, {"event", "event"},
	{"error_class", "error_class"}, {"error_code", "error_code"}, {"skip_reason", "skip_reason"},
	{"magento_entity_id", "magento_id"}, {"increment_id", "increment_id"}, {"since", "since"}, {"until", "until"},
	{"filter.tenant_id", "tenant"}, {"stage", "stage"}, {"entity", "entity_type"}, {"sync_run_ids", "runs"}, {"rate", "rate"},
}

// fieldOf finds the form field an InvalidArgument message names ("" when it
// names none): the RPC's own words are shown next to that field.
func fieldOf(msg string) string {
	best := ""
	field := ""
	for _, p := range rpcFieldPrefixes {
		if strings.HasPrefix(msg, p.prefix) && len(p.prefix) > len(best) {
			rest := msg[len(p.prefix):]
			if rest == "" || strings.ContainsAny(rest[:1], " :") {
				best, field = p.prefix, p.field
			}
		}
	}
	return field
}

// runsData is the runs page.
type runsData struct {
	Form     runsForm
	Errors   fieldErrors
	Error    string
	Runs     []*ledgerv1.Run
	Statuses []string
	// Paging links (each carries the filter): "" when there is no such page.
	Next, Prev, Newest string
	Page               int
	tracingUI          string
}

// TracingUI reports whether runs link to their traces.
func (d runsData) TracingUI() bool { return d.tracingUI != "" }

// TraceLink is the tracing UI's page of a run's trace ("" without one).
func (d runsData) TraceLink(traceID string) string { return traceLink(d.tracingUI, traceID) }

// Invalid reports whether a field has an inline error (aria-invalid).
func (d runsData) Invalid(field string) bool { return d.Errors[field] != "" }

// handleRuns renders GET /runs.
func (s *Service) handleRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := runsData{Form: readRunsForm(q.Get), Statuses: runStatuses, tracingUI: s.cfg.TracingUIURL, Page: 1}
	rf, errs := d.Form.filter()
	d.Errors = errs
	if len(errs) > 0 {
		s.renderConsole(w, r, http.StatusBadRequest, "runs.html", "Runs", d)
		return
	}
	token := strings.TrimSpace(q.Get("page"))
	var history []string
	if h := strings.TrimSpace(q.Get("prev")); h != "" {
		history = strings.Split(h, ".")
	}
	resp, err := s.ListRuns(r.Context(), &ledgerv1.ListRunsRequest{Filter: rf, PageToken: token, Limit: consoleRunsPage})
	if err != nil {
		code := s.consoleRPCError(r, err, &d.Error, d.Errors, "listing runs")
		s.renderConsole(w, r, code, "runs.html", "Runs", d)
		return
	}
	d.Runs = resp.GetRuns()
	link := func(page string, prev []string) string {
		v := d.Form.values().q
		if page != "" {
			v.Set("page", page)
		}
		if len(prev) > 0 {
			v.Set("prev", strings.Join(prev, "."))
		}
		return "/runs?" + v.Encode()
	}
	if token != "" {
		d.Page = len(history) + 2
		d.Newest = link("", nil)
		if len(history) > 0 {
			d.Prev = link(history[len(history)-1], history[:len(history)-1])
		} else {
			d.Prev = d.Newest
		}
	}
	if next := resp.GetNextPageToken(); next != "" {
		h := history
		if token != "" {
			h = append(append([]string(nil), history...), token)
		}
		if len(h) > maxPageHistory {
			h = h[len(h)-maxPageHistory:]
		}
		d.Next = link(next, h)
	}
	s.renderConsole(w, r, http.StatusOK, "runs.html", "Runs", d)
}

// consoleRPCError turns an AdminService error into what a console page shows:
// an InvalidArgument naming a field goes next to that field, anything else
// into msg. It returns the HTTP status to answer with.
func (s *Service) consoleRPCError(r *http.Request, err error, msg *string, errs fieldErrors, what string) int {
	st := status.Convert(err)
	switch st.Code() {
	case codes.InvalidArgument:
		if f := fieldOf(st.Message()); f != "" && errs != nil {
			errs[f] = st.Message()
		} else {
			*msg = st.Message()
		}
		return http.StatusBadRequest
	case codes.NotFound:
		*msg = st.Message()
		return http.StatusNotFound
	case codes.FailedPrecondition:
		*msg = st.Message()
		return http.StatusConflict
	case codes.Internal, codes.Unknown:
		s.log.ErrorContext(r.Context(), "console: "+what, "err", err)
		*msg = what + " failed (details in the admin service log)"
		return http.StatusInternalServerError
	default:
		*msg = st.Message()
		return http.StatusServiceUnavailable
	}
}

// retryData is the answer to a retry: each run's outcome.
type retryData struct {
	Runs []*ledgerv1.RetriedRun
	// Back is the runs page the retry came from.
	Back    string
	Retried int
	Error   string
}

// handleRetryRuns is POST /runs/retry: the checked runs (field run, one per
// run) are retried with RetryRuns and each answer is shown.
func (s *Service) handleRetryRuns(w http.ResponseWriter, r *http.Request) {
	d := retryData{Back: safeRunsBack(r.PostFormValue("back"))}
	ids := r.PostForm["run"]
	if len(ids) == 0 {
		s.setFlash(w, flashError, "run: select at least one run to retry (the boxes in the first column).")
		http.Redirect(w, r, d.Back, http.StatusSeeOther)
		return
	}
	resp, err := s.RetryRuns(r.Context(), &ledgerv1.RetryRunsRequest{SyncRunIds: ids})
	if err != nil {
		code := s.consoleRPCError(r, err, &d.Error, nil, "retrying runs")
		s.renderConsole(w, r, code, "runs_retry.html", "Retry", d)
		return
	}
	s.showRetried(w, r, d, resp)
}

func (s *Service) showRetried(w http.ResponseWriter, r *http.Request, d retryData, resp *ledgerv1.RetryRunsResponse) {
	d.Runs = resp.GetRuns()
	for _, rr := range d.Runs {
		if rr.GetError() == "" {
			d.Retried++
		}
	}
	s.renderConsole(w, r, http.StatusOK, "runs_retry.html", "Retry", d)
}

// confirmData is the "Retry all matching" confirmation.
type confirmData struct {
	Form    runsForm
	Matched int64
	Back    string
}

// handleRetryMatching is POST /runs/retry-matching: without confirm it
// counts the runs the filter would retry (RetryRuns dry run) and asks; with
// confirm=<that count> it retries at most that many.
func (s *Service) handleRetryMatching(w http.ResponseWriter, r *http.Request) {
	form := readRunsForm(r.PostFormValue)
	back := "/runs?" + form.Query()
	rf, errs := form.filter()
	if len(errs) > 0 {
		s.renderConsole(w, r, http.StatusBadRequest, "runs.html", "Runs",
			runsData{Form: form, Errors: errs, Statuses: runStatuses, tracingUI: s.cfg.TracingUIURL, Page: 1})
		return
	}
	confirm := strings.TrimSpace(r.PostFormValue("confirm"))
	if confirm == "" {
		resp, err := s.RetryRuns(r.Context(), &ledgerv1.RetryRunsRequest{Filter: rf, DryRun: true})
		if err != nil {
			d := runsData{Form: form, Errors: fieldErrors{}, Statuses: runStatuses, tracingUI: s.cfg.TracingUIURL, Page: 1}
			code := s.consoleRPCError(r, err, &d.Error, d.Errors, "counting runs to retry")
			s.renderConsole(w, r, code, "runs.html", "Runs", d)
			return
		}
		s.renderConsole(w, r, http.StatusOK, "runs_confirm.html", "Retry all matching",
			confirmData{Form: form, Matched: resp.GetMatched(), Back: back})
		return
	}
	n, err := strconv.Atoi(confirm)
	if err != nil || n < 1 || n > MaxRetryRuns {
		s.setFlash(w, flashError, "confirm: the confirmed count is missing or not 1–"+strconv.Itoa(MaxRetryRuns)+"; count again.")
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	resp, err := s.RetryRuns(r.Context(), &ledgerv1.RetryRunsRequest{Filter: rf, Limit: int32(n)})
	d := retryData{Back: back}
	if err != nil {
		code := s.consoleRPCError(r, err, &d.Error, nil, "retrying runs")
		s.renderConsole(w, r, code, "runs_retry.html", "Retry", d)
		return
	}
	s.showRetried(w, r, d, resp)
}

// safeRunsBack is a runs page URL from a form ("/runs" when it is not one).
func safeRunsBack(v string) string {
	if v == "/runs" || (strings.HasPrefix(v, "/runs?") || strings.HasPrefix(v, "/runs/")) && !strings.ContainsAny(v, "\r\n\\") && !strings.HasPrefix(v, "//") {
		return v
	}
	return "/runs"
}
