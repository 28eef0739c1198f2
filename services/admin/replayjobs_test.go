package admin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/admin"
)

// deadLetters publishes n replayable dead letters of tenant (code
// record_invalid), one run each.
func (h *busHarness) deadLetters(t *testing.T, tenant string, n int) {
	t.Helper()
	for i := range n {
		h.deadLetter(t, "sage-writer", tenant, fmt.Sprintf("22222222-0000-4000-8000-%012d", i), "record_invalid",
			bus.OutboxSubject(tenant, "invoice.created"))
	}
}

// dlqCount is how many dead letters of tenant wait in the DLQ.
func (h *busHarness) dlqCount(t *testing.T, tenant string) int {
	t.Helper()
	resp, err := h.client.ListDeadLetters(h.ctx(t), &ledgerv1.ListDeadLettersRequest{
		Filter: &ledgerv1.DeadLetterFilter{TenantId: tenant}, Limit: admin.MaxDeadLetterLimit})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.GetDeadLetters())
}

// outboxCount is how many messages OUTBOX holds (each replayed dead letter is
// one).
func (h *busHarness) outboxCount(t *testing.T) uint64 {
	t.Helper()
	st, err := h.js.Stream(t.Context(), bus.StreamOutbox)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestReplayJobShowsProgressAndMovesEverything(t *testing.T) {
	t.Parallel()
	h := newBusHarness(t)
	h.deadLetters(t, "acme", 30)
	h.deadLetters(t, "beta", 3) // outside the filter: stays
	jobs := admin.ReplayJobsOf(h.svc)
	t.Cleanup(jobs.Close)

	// 30 at 20 per second: about 1.5 s, long enough to be seen half-way.
	j, err := jobs.Start(t.Context(), &ledgerv1.DeadLetterFilter{TenantId: "acme"}, 20)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != admin.JobRunning || j.ID == "" || j.Rate != 20 || j.Started.IsZero() {
		t.Fatalf("started job: %+v", j)
	}
	devtest.Eventually(t, "the job's progress between none and all", func() bool {
		p, _ := jobs.Get(j.ID)
		return p.Matched == 30 && p.Moved > 0 && p.Moved < 30 && p.Running()
	})
	done, err := jobs.Wait(t.Context(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != admin.JobDone || done.Matched != 30 || done.Moved != 30 || done.Failed != 0 || done.Percent() != 100 ||
		done.Finished.IsZero() || !strings.Contains(done.Message, "replayed 30 of 30") {
		t.Fatalf("finished job: %+v", done)
	}
	if took := done.Finished.Sub(done.Started); took < time.Second {
		t.Errorf("30 dead letters at 20/s took %v: the rate was not kept", took)
	}
	if n := h.dlqCount(t, "acme"); n != 0 {
		t.Errorf("%d dead letters of acme left after the replay", n)
	}
	if n := h.dlqCount(t, "beta"); n != 3 {
		t.Errorf("%d dead letters of beta, want its 3 untouched", n)
	}
	if n := h.outboxCount(t); n != 30 {
		t.Errorf("OUTBOX holds %d messages, want the 30 replayed", n)
	}
	if list := jobs.List(); len(list) != 1 || list[0].ID != j.ID {
		t.Errorf("List: %+v", list)
	}
}

func TestReplayJobCancelLeavesTheRestInPlace(t *testing.T) {
	t.Parallel()
	h := newBusHarness(t)
	const n = 200
	h.deadLetters(t, "acme", n)
	jobs := admin.ReplayJobsOf(h.svc)
	t.Cleanup(jobs.Close)

	j, err := jobs.Start(t.Context(), &ledgerv1.DeadLetterFilter{TenantId: "acme"}, 25)
	if err != nil {
		t.Fatal(err)
	}
	devtest.Eventually(t, "a few dead letters moved", func() bool {
		p, _ := jobs.Get(j.ID)
		return p.Moved >= 5
	})
	got, err := jobs.Cancel(t.Context(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != admin.JobCancelled || got.Matched != n || got.Moved < 5 || got.Moved >= n || got.Finished.IsZero() {
		t.Fatalf("cancelled job: %+v", got)
	}
	// The job's count is exact: what it says moved left the DLQ and
	// reached OUTBOX, everything else is still dead-lettered.
	left := h.dlqCount(t, "acme")
	if int64(left) != n-got.Moved {
		t.Errorf("the job says %d of %d moved, the DLQ still holds %d (want %d)", got.Moved, n, left, n-got.Moved)
	}
	if out := h.outboxCount(t); int64(out) != got.Moved {
		t.Errorf("OUTBOX holds %d messages, the job says %d moved", out, got.Moved)
	}
	if !strings.Contains(got.Message, fmt.Sprintf("%d not moved stay in the DLQ", n-got.Moved)) {
		t.Errorf("message %q", got.Message)
	}
	// Cancelling again answers the same final state.
	if again, err := jobs.Cancel(t.Context(), j.ID); err != nil || again.Moved != got.Moved || again.State != admin.JobCancelled {
		t.Errorf("second cancel: %+v %v", again, err)
	}
}

func TestReplayJobCountsFailuresMidway(t *testing.T) {
	t.Parallel()
	h := newBusHarness(t)
	jobs := admin.ReplayJobsOf(h.svc)
	t.Cleanup(jobs.Close)

	// Dead letters whose original subject is not a work stream fail and stay;
	// the others move.
	for i := range 9 {
		subject := bus.OutboxSubject("acme", "invoice.created")
		if i%3 == 1 {
			subject = "ledger.dlq.mapper.acme.invoice"
		}
		h.deadLetter(t, "mapper", "acme", fmt.Sprintf("33333333-0000-4000-8000-%012d", i), "record_invalid", subject)
	}
	j, err := jobs.Start(t.Context(), &ledgerv1.DeadLetterFilter{TenantId: "acme"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	done, err := jobs.Wait(t.Context(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != admin.JobDone || done.Matched != 9 || done.Moved != 6 || done.Failed != 3 ||
		!strings.Contains(done.Message, "3 failed and stay in the DLQ") {
		t.Fatalf("job: %+v", done)
	}
	if left := h.dlqCount(t, "acme"); left != 3 {
		t.Errorf("%d dead letters left, want the 3 that failed", left)
	}

	// A replay that breaks off (NATS gone, say) is failed, with what it had
	// moved until then.
	broken := admin.ReplayJobsWith(func(_ *ledgerv1.ReplayDeadLettersRequest, srv grpc.ServerStreamingServer[ledgerv1.ReplayDeadLettersResponse]) error {
		_ = srv.Send(&ledgerv1.ReplayDeadLettersResponse{Matched: 10})
		_ = srv.Send(&ledgerv1.ReplayDeadLettersResponse{Matched: 10, Replayed: 4, Failed: 1})
		return status.Error(codes.Unavailable, "reading the DLQ stream: nats: connection closed")
	})
	t.Cleanup(broken.Close)
	bj, err := broken.Start(t.Context(), nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	bj, _ = broken.Wait(t.Context(), bj.ID)
	if bj.State != admin.JobFailed || bj.Moved != 4 || bj.Failed != 1 || bj.Matched != 10 ||
		!strings.Contains(bj.Message, "failed after 4 of 10 moved: reading the DLQ stream") {
		t.Fatalf("broken job: %+v", bj)
	}
}

func TestReplayJobRefusesBadInput(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	jobs := admin.ReplayJobsWith(func(_ *ledgerv1.ReplayDeadLettersRequest, srv grpc.ServerStreamingServer[ledgerv1.ReplayDeadLettersResponse]) error {
		select {
		case <-block:
		case <-srv.Context().Done():
		}
		return srv.Context().Err()
	})
	t.Cleanup(jobs.Close)
	ctx := t.Context()
	for _, c := range []struct {
		f    *ledgerv1.DeadLetterFilter
		rate int32
		want string
	}{
		{&ledgerv1.DeadLetterFilter{Stage: "ingest"}, 1, "stage"},
		{&ledgerv1.DeadLetterFilter{TenantId: "no such/tenant"}, 1, "tenant_id"},
		{&ledgerv1.DeadLetterFilter{SyncRunIds: []string{"x"}}, 1, "sync_run_ids"},
		{nil, -1, "rate"},
		{nil, admin.MaxRate + 1, "rate"},
	} {
		if _, err := jobs.Start(ctx, c.f, c.rate); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Start(%v, %d): %v, want an error naming %s", c.f, c.rate, err, c.want)
		}
	}
	var ids []string
	for range 4 {
		j, err := jobs.Start(ctx, nil, 1)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	if _, err := jobs.Start(ctx, nil, 1); err == nil || !strings.Contains(err.Error(), "replays are running") {
		t.Errorf("a fifth concurrent replay: %v", err)
	}
	if _, found := jobs.Get("nope"); found {
		t.Error("Get(unknown) found a job")
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, id := range ids {
		if j, err := jobs.Cancel(cctx, id); err != nil || j.State != admin.JobCancelled {
			t.Errorf("cancel %s: %+v %v", id, j, err)
		}
	}
	close(block)
}

func TestRunbookCatalogue(t *testing.T) {
	t.Parallel()
	means, fix, ok := admin.Catalogued("code", "record_invalid")
	if !ok || means == "" || fix == "" {
		t.Fatalf("code record_invalid: %q %q %v", means, fix, ok)
	}
	for _, k := range [][2]string{{"class", "validation"}, {"skip", "zero_value_invoice"}, {"ingest", "unauthorized"}} {
		if _, _, ok := admin.Catalogued(k[0], k[1]); !ok {
			t.Errorf("%s %s is not catalogued", k[0], k[1])
		}
	}
	if _, _, ok := admin.Catalogued("code", "no_such_code"); ok {
		t.Error("an unknown code is catalogued")
	}
	if got := admin.CatalogueFor("validation", "record_invalid", ""); strings.Join(got, ",") != "code-record_invalid,class-validation" {
		t.Errorf("a failed run's entries: %v", got)
	}
	if got := admin.CatalogueFor("", "", "store_filtered"); strings.Join(got, ",") != "skip-store_filtered" {
		t.Errorf("a skipped run's entries: %v", got)
	}
	html := admin.RunbookHTML("use `ledgerctl dlq list` <script>x</script> and **never** [the page](runbooks.md#x)\n\nsecond")
	want := "use <code>ledgerctl dlq list</code> &lt;script&gt;x&lt;/script&gt; and <strong>never</strong> the page<br><br>second"
	if html != want {
		t.Errorf("runbookHTML:\n got %s\nwant %s", html, want)
	}
}
