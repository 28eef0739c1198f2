package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/bus"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// The console's dead-letter page (GET /dead-letters): the banner with counts,
// the dead letters grouped by stage, class and code with each group's
// catalogued cause and fix, a filter with a preview (the exact count a
// replay would move), replays at a chosen rate as background jobs
// (replayjobs.go) with progress and Cancel, and purge with a confirmation
// that names the count.

const (
	// defaultReplayRate is the rate the replay form proposes (per second).
	defaultReplayRate = 50
	// maxGroupScan bounds the dead letters one page load reads to group
	// them (a replay moves at most maxReplay too).
	maxGroupScan = maxReplay
)

// dlqConsole serves the dead-letter pages with the process's replay jobs.
type dlqConsole struct {
	s    *Service
	jobs *replayJobs
}

// dlqForm is the dead-letter filter as the operator typed it.
type dlqForm struct {
	Tenant, Stage, ErrorClass, ErrorCode, EntityType, Since, Until, Runs string
}

var dlqFormFields = []string{"tenant", "stage", "error_class", "error_code", "entity_type", "since", "until", "runs"}

func readDLQForm(get func(string) string) dlqForm {
	v := func(k string) string { return strings.TrimSpace(get(k)) }
	return dlqForm{Tenant: v("tenant"), Stage: v("stage"), ErrorClass: v("error_class"), ErrorCode: v("error_code"),
		EntityType: v("entity_type"), Since: v("since"), Until: v("until"), Runs: v("runs")}
}

func (f dlqForm) values() filterValues {
	return newFilterValues(dlqFormFields, f.Tenant, f.Stage, f.ErrorClass, f.ErrorCode, f.EntityType, f.Since, f.Until, f.Runs)
}

// Query is the filter as a URL query.
func (f dlqForm) Query() string { return f.values().Query() }

// Empty reports whether no filter is set (everything in the DLQ).
func (f dlqForm) Empty() bool { return f.values().Empty() }

// Fields lists the set filters as name/value pairs (hidden form fields).
func (f dlqForm) Fields() [][2]string { return f.values().Fields() }

// filter turns the form into a DeadLetterFilter; what the RPC does not check
// (class and code words, times) is checked here, the rest by the RPC's own
// parse (parseDLQFilter) so the messages are the RPC's.
func (f dlqForm) filter() (*ledgerv1.DeadLetterFilter, fieldErrors) {
	errs := fieldErrors{}
	out := &ledgerv1.DeadLetterFilter{TenantId: f.Tenant, Stage: f.Stage, ErrorClass: f.ErrorClass, ErrorCode: f.ErrorCode, EntityType: f.EntityType}
	for _, w := range []struct{ field, v, example string }{
		{"error_class", f.ErrorClass, "validation"}, {"error_code", f.ErrorCode, "record_invalid"}, {"entity_type", f.EntityType, "invoice"},
	} {
		if w.v != "" && !filterWord.MatchString(w.v) {
			errs[w.field] = fmt.Sprintf("%s %q: use lowercase letters, digits and _ (at most 64), e.g. %s", w.field, w.v, w.example)
		}
	}
	for _, c := range []struct {
		name, v string
		dst     **timestamppb.Timestamp
	}{{"since", f.Since, &out.Since}, {"until", f.Until, &out.Until}} {
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
	if f.Runs != "" {
		out.SyncRunIds = strings.FieldsFunc(f.Runs, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
		if len(out.SyncRunIds) > MaxRetryRuns {
			errs["runs"] = fmt.Sprintf("sync_run_ids: %d run ids; give at most %d", len(out.SyncRunIds), MaxRetryRuns)
		}
	}
	if len(errs) == 0 {
		if _, err := parseDLQFilter(out); err != nil {
			msg := status.Convert(err).Message()
			field := fieldOf(msg)
			if strings.HasPrefix(msg, "until is before since") {
				field = "until"
			}
			if field == "" {
				field = "tenant"
			}
			errs[field] = msg
		}
	}
	return out, errs
}

// dlqGroup is the dead letters of one stage, class and code.
type dlqGroup struct {
	Stage, ErrorClass, ErrorCode string
	Count                        int
	Tenants                      []string
	OldestFailure, LastFailure   time.Time
	Catalogue                    []runbookEntry
	// Select is the page's URL with this group as the filter (within the
	// current tenant and entity filter).
	Select string
}

// dlqCounts are the dead letters a filter matches, grouped.
type dlqCounts struct {
	Total  int
	Groups []dlqGroup
	// Truncated: more than maxGroupScan matched; counts cover the first.
	Truncated bool
}

// countDeadLetters groups the dead letters f matches by stage, class and
// code, reading the DLQ the way ListDeadLetters does (scanDLQ: direct gets by
// subject, no consumer), so a count covers every match, not a listing limit.
func (s *Service) countDeadLetters(ctx context.Context, f *ledgerv1.DeadLetterFilter) (dlqCounts, error) {
	pf, err := parseDLQFilter(f)
	if err != nil {
		return dlqCounts{}, err
	}
	stream, err := s.dlqStream(ctx)
	if err != nil {
		return dlqCounts{}, err
	}
	var out dlqCounts
	byKey := map[[3]string]*dlqGroup{}
	err = s.scanDLQ(ctx, stream, pf, func(_ uint64, _ string, dl *ledgerv1.DeadLetter) bool {
		out.Total++
		k := [3]string{dl.GetStage(), dl.GetErrorClass(), dl.GetErrorCode()}
		g := byKey[k]
		if g == nil {
			g = &dlqGroup{Stage: k[0], ErrorClass: k[1], ErrorCode: k[2]}
			byKey[k] = g
		}
		g.Count++
		if t := dl.GetTenantId(); !slices.Contains(g.Tenants, t) && len(g.Tenants) < 10 {
			g.Tenants = append(g.Tenants, t)
		}
		at := dl.GetLastFailureAt().AsTime()
		if dl.GetLastFailureAt() == nil {
			at = dl.GetFirstFailureAt().AsTime()
		}
		if g.OldestFailure.IsZero() || at.Before(g.OldestFailure) {
			g.OldestFailure = at
		}
		if at.After(g.LastFailure) {
			g.LastFailure = at
		}
		if out.Total >= maxGroupScan {
			out.Truncated = true
			return false
		}
		return true
	})
	if err != nil {
		return dlqCounts{}, err
	}
	for _, g := range byKey {
		g.Catalogue = catalogueFor(g.ErrorClass, g.ErrorCode, "")
		out.Groups = append(out.Groups, *g)
	}
	slices.SortFunc(out.Groups, func(a, b dlqGroup) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Stage+a.ErrorClass+a.ErrorCode, b.Stage+b.ErrorClass+b.ErrorCode)
	})
	return out, nil
}

// dlqBanner is the DLQ's size by stage and tenant, from the stream's
// per-subject state (one request, no scan).
type dlqBanner struct {
	Total    int64
	ByStage  []dlqCount
	ByTenant []dlqCount
}

type dlqCount struct {
	Name  string
	Count int64
}

func (s *Service) dlqBanner(ctx context.Context) (dlqBanner, error) {
	stream, err := s.dlqStream(ctx)
	if err != nil {
		return dlqBanner{}, err
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter("ledger.dlq.>"))
	if err != nil {
		return dlqBanner{}, status.Errorf(codes.Unavailable, "reading the %s stream: %v", bus.StreamDLQ, err)
	}
	var b dlqBanner
	stages, tenants := map[string]int64{}, map[string]int64{}
	for subj, n := range info.State.Subjects {
		parts := strings.Split(subj, ".") // ledger.dlq.<stage>.<tenant>.<entity>
		if len(parts) < 5 {
			continue
		}
		b.Total += int64(n)
		stages[parts[2]] += int64(n)
		tenants[parts[3]] += int64(n)
	}
	sorted := func(m map[string]int64) []dlqCount {
		out := make([]dlqCount, 0, len(m))
		for k, v := range m {
			out = append(out, dlqCount{k, v})
		}
		slices.SortFunc(out, func(a, b dlqCount) int { return strings.Compare(a.Name, b.Name) })
		return out
	}
	b.ByStage, b.ByTenant = sorted(stages), sorted(tenants)
	return b, nil
}

// dlqData is the dead-letter page.
type dlqData struct {
	Form   dlqForm
	Errors fieldErrors
	Error  string
	Stages []string
	Banner dlqBanner
	Counts dlqCounts
	// Previewed: the preview ran; Preview is the exact count a replay of
	// the filter would move now.
	Previewed bool
	Preview   int64
	Rate      int
	Jobs      []ReplayJob
}

// Invalid reports whether a field has an inline error.
func (d dlqData) Invalid(field string) bool { return d.Errors[field] != "" }

func (c dlqConsole) handlePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := dlqData{Form: readDLQForm(q.Get), Stages: dlqStages, Rate: defaultReplayRate, Jobs: c.jobs.List()}
	f, errs := d.Form.filter()
	d.Errors = errs
	code := http.StatusOK
	ctx := r.Context()
	var err error
	if d.Banner, err = c.s.dlqBanner(ctx); err != nil {
		code = c.s.consoleRPCError(r, err, &d.Error, nil, "reading the DLQ")
		c.s.renderConsole(w, r, code, "deadletters.html", "Dead letters", d)
		return
	}
	if len(errs) > 0 {
		c.s.renderConsole(w, r, http.StatusBadRequest, "deadletters.html", "Dead letters", d)
		return
	}
	if d.Counts, err = c.s.countDeadLetters(ctx, f); err != nil {
		code = c.s.consoleRPCError(r, err, &d.Error, d.Errors, "counting dead letters")
		c.s.renderConsole(w, r, code, "deadletters.html", "Dead letters", d)
		return
	}
	for i := range d.Counts.Groups {
		g := &d.Counts.Groups[i]
		sel := dlqForm{Tenant: d.Form.Tenant, EntityType: d.Form.EntityType, Stage: g.Stage, ErrorClass: g.ErrorClass, ErrorCode: g.ErrorCode}
		g.Select = "/dead-letters?" + sel.Query() + "#filter"
	}
	if q.Get("preview") != "" {
		if d.Preview, err = c.s.replayPreview(ctx, f); err != nil {
			code = c.s.consoleRPCError(r, err, &d.Error, d.Errors, "previewing the replay")
		} else {
			d.Previewed = true
		}
	}
	c.s.renderConsole(w, r, code, "deadletters.html", "Dead letters", d)
}

// replayPreview is the exact count a replay of f would move now: the
// ReplayDeadLetters RPC's dry run.
func (s *Service) replayPreview(ctx context.Context, f *ledgerv1.DeadLetterFilter) (int64, error) {
	var last *ledgerv1.ReplayDeadLettersResponse
	err := s.ReplayDeadLetters(&ledgerv1.ReplayDeadLettersRequest{Filter: f, DryRun: true},
		&replayStream{ctx: ctx, send: func(p *ledgerv1.ReplayDeadLettersResponse) { last = p }})
	if err != nil {
		return 0, err
	}
	if last == nil {
		return 0, errors.New("the dry run answered nothing")
	}
	return last.GetMatched(), nil
}

// handleReplay is POST /dead-letters/replay: starts a replay job of the
// filter at the chosen rate and shows its progress.
func (c dlqConsole) handleReplay(w http.ResponseWriter, r *http.Request) {
	form := readDLQForm(r.PostFormValue)
	f, errs := form.filter()
	rateText := strings.TrimSpace(r.PostFormValue("rate"))
	rate, err := strconv.Atoi(rateText)
	if err != nil || rate < 1 || rate > MaxRate {
		errs["rate"] = fmt.Sprintf("rate %q: give dead letters per second, 1–%d", rateText, MaxRate)
	}
	if len(errs) > 0 {
		d := dlqData{Form: form, Errors: errs, Stages: dlqStages, Rate: defaultReplayRate, Jobs: c.jobs.List()}
		d.Banner, _ = c.s.dlqBanner(r.Context())
		c.s.renderConsole(w, r, http.StatusBadRequest, "deadletters.html", "Dead letters", d)
		return
	}
	job, err := c.jobs.Start(r.Context(), f, int32(rate))
	if err != nil {
		msg := err.Error()
		if st, ok := status.FromError(err); ok {
			msg = st.Message()
		}
		c.s.setFlash(w, flashError, "Replay not started: "+msg)
		http.Redirect(w, r, "/dead-letters?"+form.Query(), http.StatusSeeOther)
		return
	}
	c.s.log.InfoContext(r.Context(), "console: replay started", "job", job.ID, "filter", form.Query(), "rate", rate)
	if exp := strings.TrimSpace(r.PostFormValue("expected")); exp != "" {
		c.s.setFlash(w, flashOK, "Replay started; the preview counted "+exp+".")
	}
	http.Redirect(w, r, "/dead-letters/jobs/"+job.ID, http.StatusSeeOther)
}

// jobData is the replay job page.
type jobData struct {
	Job  ReplayJob
	Form dlqForm
}

func (c dlqConsole) handleJob(w http.ResponseWriter, r *http.Request) {
	job, ok := c.jobs.Get(r.PathValue("id"))
	if !ok {
		c.s.renderConsoleMessage(w, r, http.StatusNotFound, page{Title: "No such replay", Problem: errUnknownJob.Error(),
			Fix: "Preview the filter again on the dead-letter page: what was not moved is still there.", Back: "/dead-letters"})
		return
	}
	d := jobData{Job: job, Form: formOf(job.Filter)}
	if job.Running() {
		// The page reloads itself while the job runs (no script needed).
		w.Header().Set("Refresh", "2")
	}
	c.s.renderConsole(w, r, http.StatusOK, "deadletters_job.html", "Replay "+job.ID, d)
}

func (c dlqConsole) handleCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	job, err := c.jobs.Cancel(ctx, id)
	switch {
	case errors.Is(err, errUnknownJob):
		c.s.setFlash(w, flashError, err.Error())
		http.Redirect(w, r, "/dead-letters", http.StatusSeeOther)
		return
	case err != nil:
		c.s.setFlash(w, flashError, "The replay is still stopping; reload in a moment.")
	default:
		c.s.setFlash(w, flashOK, job.Message)
	}
	http.Redirect(w, r, "/dead-letters/jobs/"+id, http.StatusSeeOther)
}

// purgeData is the purge confirmation.
type purgeData struct {
	Form    dlqForm
	Matched int64
	Back    string
}

// handlePurge is POST /dead-letters/purge: without expected_count it counts
// (PurgeDeadLetters dry run) and asks with a button that names the count;
// with expected_count it deletes, and deletes nothing if the count changed.
func (c dlqConsole) handlePurge(w http.ResponseWriter, r *http.Request) {
	form := readDLQForm(r.PostFormValue)
	back := "/dead-letters?" + form.Query()
	f, errs := form.filter()
	if len(errs) > 0 {
		d := dlqData{Form: form, Errors: errs, Stages: dlqStages, Rate: defaultReplayRate, Jobs: c.jobs.List()}
		d.Banner, _ = c.s.dlqBanner(r.Context())
		c.s.renderConsole(w, r, http.StatusBadRequest, "deadletters.html", "Dead letters", d)
		return
	}
	expText := strings.TrimSpace(r.PostFormValue("expected_count"))
	if expText == "" {
		resp, err := c.s.PurgeDeadLetters(r.Context(), &ledgerv1.PurgeDeadLettersRequest{Filter: f, DryRun: true})
		if err != nil {
			var msg string
			c.s.consoleRPCError(r, err, &msg, nil, "counting dead letters to delete")
			c.s.setFlash(w, flashError, "Not deleted: "+msg)
			http.Redirect(w, r, back, http.StatusSeeOther)
			return
		}
		c.s.renderConsole(w, r, http.StatusOK, "deadletters_purge.html", "Delete dead letters",
			purgeData{Form: form, Matched: resp.GetMatched(), Back: back})
		return
	}
	exp, err := strconv.ParseInt(expText, 10, 64)
	if err != nil || exp < 1 {
		c.s.setFlash(w, flashError, "expected_count: the confirmed count is missing; count again.")
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	resp, err := c.s.PurgeDeadLetters(r.Context(), &ledgerv1.PurgeDeadLettersRequest{Filter: f, ExpectedCount: exp})
	if err != nil {
		var msg string
		c.s.consoleRPCError(r, err, &msg, nil, "deleting dead letters")
		if resp != nil && resp.GetMessage() != "" {
			msg = resp.GetMessage()
		}
		c.s.setFlash(w, flashError, "Delete: "+msg)
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	c.s.log.InfoContext(r.Context(), "console: dead letters purged", "filter", form.Query(), "purged", resp.GetPurged(), "failed", resp.GetFailed())
	kind := flashOK
	if resp.GetFailed() > 0 {
		kind = flashError
	}
	c.s.setFlash(w, kind, resp.GetMessage()+".")
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// formOf shows a job's filter as the page's form.
func formOf(f *ledgerv1.DeadLetterFilter) dlqForm {
	out := dlqForm{Tenant: f.GetTenantId(), Stage: f.GetStage(), ErrorClass: f.GetErrorClass(), ErrorCode: f.GetErrorCode(),
		EntityType: f.GetEntityType(), Runs: strings.Join(f.GetSyncRunIds(), " ")}
	if f.GetSince() != nil {
		out.Since = f.GetSince().AsTime().UTC().Format(time.RFC3339)
	}
	if f.GetUntil() != nil {
		out.Until = f.GetUntil().AsTime().UTC().Format(time.RFC3339)
	}
	return out
}
