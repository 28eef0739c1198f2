package admin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/admin"
)

// busHarness is a harness whose service publishes to a fresh JetStream.
type busHarness struct {
	*harness
	js jetstream.JetStream
}

func newBusHarness(t *testing.T, opts ...admin.Option) *busHarness {
	t.Helper()
	nc, err := nats.Connect(devtest.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	return &busHarness{harness: newHarnessWith(t, append([]admin.Option{admin.WithJetStream(js)}, opts...)), js: js}
}

// finishedRun records a delivery and finishes it with status.
func (h *harness) finishedRun(t *testing.T, tenant string, id int64, st string) store.Run {
	t.Helper()
	ctx := t.Context()
	acc, err := h.st.AcceptWebhook(ctx, store.Delivery{TenantID: tenant, IdempotencyKey: fmt.Sprintf("invoice.created:%d", id),
		Event: "invoice.created", EntityType: "invoice", MagentoEntityID: id, WebsiteID: 1, StoreID: 2,
		OccurredAt: "2026-05-01T09:00:00Z", Payload: []byte(`{"order_id":7}`)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.StartRun(ctx, acc.RunID); err != nil {
		t.Fatal(err)
	}
	if st == store.RunRunning {
		r, _ := h.st.Run(ctx, acc.RunID)
		return r
	}
	r, err := h.st.FinishRun(ctx, store.Outcome{RunID: acc.RunID, Status: st, SageID: "sage-" + fmt.Sprint(id)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestGetRunAndRetryRuns(t *testing.T) {
	t.Parallel()
	h := newBusHarness(t)
	h.createTenant(t, "acme")
	done := h.finishedRun(t, "acme", 42, store.RunSucceeded)
	running := h.finishedRun(t, "acme", 43, store.RunRunning)
	if err := h.st.RecordAttempt(t.Context(), store.Attempt{RunID: done.ID, Stage: "sage-writer", Method: "POST",
		Path: "/sales_invoices", HTTPStatus: 201, Duration: 30 * time.Millisecond, Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}

	if err := h.st.RecordMapping(t.Context(), done.ID, store.Mapping{Policy: []byte(`{}`),
		Canonical: []byte(`{"invoice/42":{"increment_id":"000000042"}}`), SageRequest: []byte(`{"operations":[]}`)}); err != nil {
		t.Fatal(err)
	}
	got, err := h.client.GetRun(h.ctx(t), &ledgerv1.GetRunRequest{SyncRunId: done.ID})
	if err != nil {
		t.Fatalf("GetRun: %v", err)
	}
	if !strings.Contains(got.GetCanonicalJson(), `"increment_id": "000000042"`) || !strings.Contains(got.GetSageRequestJson(), `"operations"`) ||
		got.GetAttempts()[0].GetCreatedAt() == nil {
		t.Fatalf("GetRun documents: %q / %q, attempt %v", got.GetCanonicalJson(), got.GetSageRequestJson(), got.GetAttempts()[0])
	}
	if got.GetRun().GetStatus() != "succeeded" || got.GetRun().GetSageId() != "sage-42" || len(got.GetAttempts()) != 1 ||
		got.GetAttempts()[0].GetHttpStatus() != 201 || got.GetAttempts()[0].GetDurationMs() != 30 {
		t.Fatalf("GetRun: %v", got)
	}
	if _, err := h.client.GetRun(h.ctx(t), &ledgerv1.GetRunRequest{SyncRunId: "nope"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("GetRun(bad id): %v", err)
	}
	if _, err := h.client.GetRun(h.ctx(t), &ledgerv1.GetRunRequest{SyncRunId: "9b2f7c1e-0000-4000-8000-000000000000"}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetRun(unknown): %v", err)
	}

	// Watch OUTBOX for the republished event.
	cons, err := h.js.OrderedConsumer(t.Context(), bus.StreamOutbox, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// A run can be retried right after it finished: the mapper gives each
	// attempt its own Sage-write message id.
	resp, err := h.client.RetryRuns(h.ctx(t), &ledgerv1.RetryRunsRequest{SyncRunIds: []string{done.ID, running.ID, "junk", done.ID}})
	if err != nil {
		t.Fatalf("RetryRuns: %v", err)
	}
	rs := resp.GetRuns()
	if len(rs) != 4 || rs[0].GetError() != "" || !strings.Contains(rs[1].GetError(), "running now") ||
		!strings.Contains(rs[2].GetError(), "not a run id") || !strings.Contains(rs[3].GetError(), "listed twice") {
		t.Fatalf("RetryRuns answers: %v", rs)
	}
	r, _ := h.st.Run(t.Context(), done.ID)
	if r.Status != store.RunPending || r.FinishedAt != nil {
		t.Fatalf("after retry the run is %s (finished %v), want pending", r.Status, r.FinishedAt)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("no event republished: %v", err)
	}
	ev := &ledgerv1.OutboxEvent{}
	if err := proto.Unmarshal(msg.Data(), ev); err != nil {
		t.Fatal(err)
	}
	if msg.Subject() != bus.OutboxSubject("acme", "invoice.created") || !strings.HasPrefix(msg.Headers().Get(nats.MsgIdHdr), "retry:"+done.ID+":") ||
		msg.Headers().Get(bus.HeaderType) != "ledger.v1.OutboxEvent" {
		t.Fatalf("republished to %s with headers %v", msg.Subject(), msg.Headers())
	}
	if ev.GetSyncRunId() != done.ID || ev.GetTenantId() != "acme" || ev.GetMagentoEntityId() != 42 || ev.GetWebsiteId() != 1 ||
		ev.GetStoreId() != 2 || ev.GetOccurredAt() != "2026-05-01T09:00:00Z" || string(ev.GetPayload()) != `{"order_id": 7}` ||
		ev.GetIdempotencyKey() != "invoice.created:42" {
		t.Fatalf("republished event %v", ev)
	}

	// Without NATS the RPC explains what is missing.
	plain := newHarness(t)
	if _, err := plain.client.RetryRuns(plain.ctx(t), &ledgerv1.RetryRunsRequest{SyncRunIds: []string{done.ID}}); status.Code(err) != codes.FailedPrecondition ||
		!strings.Contains(err.Error(), "LEDGER_NATS_URL") {
		t.Fatalf("RetryRuns without NATS: %v", err)
	}
}

// confirmer stands in for statecallback: it consumes RESULTS and records the
// callback mark of every result, as a delivery would.
func (h *busHarness) confirmer(t *testing.T) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	cons, err := h.js.OrderedConsumer(ctx, bus.StreamResults, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		res := &ledgerv1.SyncResult{}
		if proto.Unmarshal(m.Data(), res) != nil {
			return
		}
		if err := h.st.SetCallbackMark(ctx, res.GetTenantId(), res.GetEntityType(), res.GetMagentoEntityId(),
			res.GetFinishedAt().AsTime(), res.GetSyncRunId()); err == nil {
			n.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Stop(); cancel() })
	return &n
}

// insertSucceeded inserts n succeeded invoice runs finished a second apart.
func (h *harness) insertSucceeded(t *testing.T, tenant, entity string, n int) {
	t.Helper()
	_, err := h.st.Pool().Exec(t.Context(), `INSERT INTO sync_runs (sync_run_id, tenant_id, event, idempotency_key, entity_type,
			magento_entity_id, status, sage_id, attempts, started_at, finished_at)
		SELECT gen_random_uuid(), $1, $2 || '.created', $2 || '.created:' || g, $2, g, 'succeeded', 'sage-' || g, 1,
			now() - interval '1 day', now() - interval '1 day' + g * interval '1 second'
		FROM generate_series(1, $3) g`, tenant, entity, n)
	if err != nil {
		t.Fatal(err)
	}
}

// backfill runs BackfillSyncState to its end and returns every progress message.
func (h *harness) backfill(ctx context.Context, req *ledgerv1.BackfillSyncStateRequest) ([]*ledgerv1.BackfillSyncStateResponse, error) {
	stream, err := h.client.BackfillSyncState(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []*ledgerv1.BackfillSyncStateResponse
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

func resultCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), bus.StreamResults)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestBackfillSyncStateIsResumableAndIdempotent(t *testing.T) {
	t.Parallel()
	h := newBusHarness(t, admin.WithBackfillStallTimeout(time.Second))
	h.createTenant(t, "acme")
	const n = 2500 // more than the confirmation window (4 batches of 10 below)
	h.insertSucceeded(t, "acme", "invoice", n)
	h.insertSucceeded(t, "acme", "customer", 5) // not asked for
	h.finishedRun(t, "acme", 900001, store.RunFailed)
	req := &ledgerv1.BackfillSyncStateRequest{TenantId: "acme", EntityTypes: []string{"invoice,creditmemo"}, BatchSize: 10}

	dry, err := h.backfill(h.ctx(t), &ledgerv1.BackfillSyncStateRequest{TenantId: "acme", DryRun: true})
	if err != nil || len(dry) != 1 || dry[0].GetTotal() != n || !dry[0].GetDone() || resultCount(t, h.js) != 0 {
		t.Fatalf("dry run: %v %v", dry, err)
	}

	// Nobody confirms: the backfill publishes its window, then stops as stalled.
	msgs, err := h.backfill(h.ctx(t), req)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "run the backfill again") {
		t.Fatalf("stalled backfill: %v", err)
	}
	last := msgs[len(msgs)-1]
	if last.GetPushed() == 0 || last.GetPushed() >= n || last.GetFailed() != last.GetPushed() {
		t.Fatalf("stalled backfill progress: %v", last)
	}
	firstPushed := last.GetPushed()

	// The shop comes back; the backfill resumes after the last published batch
	// (nothing is published twice: no duplicates are reported).
	confirmed := h.confirmer(t)
	msgs, err = h.backfill(h.ctx(t), req)
	if err != nil {
		t.Fatalf("resumed backfill: %v", err)
	}
	if !strings.Contains(msgs[0].GetMessage(), "resuming") || msgs[0].GetPushed() != firstPushed {
		t.Fatalf("first message of the resumed backfill: %v", msgs[0])
	}
	last = msgs[len(msgs)-1]
	if !last.GetDone() || last.GetTotal() != n || last.GetPushed() != n || last.GetSkipped() != 0 || last.GetFailed() != 0 {
		t.Fatalf("resumed backfill ended with %v", last)
	}
	if got := resultCount(t, h.js); got != n {
		t.Fatalf("RESULTS holds %d messages, want %d", got, n)
	}
	if confirmed.Load() != n {
		t.Fatalf("%d confirmed, want %d", confirmed.Load(), n)
	}

	// Run twice: within the dedupe window nothing new is stored.
	msgs, err = h.backfill(h.ctx(t), req)
	if err != nil {
		t.Fatalf("second backfill: %v", err)
	}
	last = msgs[len(msgs)-1]
	if last.GetPushed() != 0 || last.GetSkipped() != n || resultCount(t, h.js) != n {
		t.Fatalf("second backfill: %v, RESULTS %d", last, resultCount(t, h.js))
	}

	for _, bad := range []*ledgerv1.BackfillSyncStateRequest{
		{TenantId: "acme", EntityTypes: []string{"order"}},
		{TenantId: "acme", Rate: -1},
		{TenantId: "acme", BatchSize: 5000},
		{TenantId: "nobody"},
	} {
		if _, err := h.backfill(h.ctx(t), bad); status.Code(err) != codes.InvalidArgument && status.Code(err) != codes.NotFound {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

func TestBackfillRateLimit(t *testing.T) {
	t.Parallel()
	h := newBusHarness(t)
	h.createTenant(t, "slow")
	h.insertSucceeded(t, "slow", "invoice", 30)
	h.confirmer(t)
	start := time.Now()
	msgs, err := h.backfill(h.ctx(t), &ledgerv1.BackfillSyncStateRequest{TenantId: "slow", Rate: 20, BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	// 30 rows at 20/s: the last one is due after 1.45 s.
	if el := time.Since(start); el < 1400*time.Millisecond {
		t.Fatalf("30 rows at 20/s took %s", el)
	}
	if last := msgs[len(msgs)-1]; last.GetPushed() != 30 {
		t.Fatalf("%v", last)
	}
}

// originalTraceparent is the trace of the deliveries that dead-lettered.
const originalTraceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// deadLetter publishes a dead letter of an OutboxEvent.
func (h *busHarness) deadLetter(t *testing.T, stage, tenant, runID, code, originalSubject string) {
	t.Helper()
	ev := &ledgerv1.OutboxEvent{TenantId: tenant, Event: "invoice.created", SyncRunId: runID, MagentoEntityId: 7}
	orig, _ := proto.Marshal(ev)
	now := timestamppb.Now()
	dl := &ledgerv1.DeadLetter{Stage: stage, TenantId: tenant, SyncRunId: runID, OriginalSubject: originalSubject,
		OriginalType: "ledger.v1.OutboxEvent", Original: orig, ErrorClass: "validation", ErrorCode: code,
		Attempts: 1, FirstFailureAt: now, LastFailureAt: now}
	// Dead-lettered by a delivery of trace 0af76519…: the replay starts a new
	// trace linked to it.
	ctx := trace.ContextWithRemoteSpanContext(t.Context(), telemetry.ParseTraceparent(originalTraceparent))
	if _, err := bus.Publish(ctx, h.js, bus.DLQSubject(stage, tenant, "invoice"), dl, ""); err != nil {
		t.Fatal(err)
	}
}

func (h *busHarness) replay(t *testing.T, req *ledgerv1.ReplayDeadLettersRequest) (*ledgerv1.ReplayDeadLettersResponse, error) {
	t.Helper()
	stream, err := h.client.ReplayDeadLetters(h.ctx(t), req)
	if err != nil {
		return nil, err
	}
	var last *ledgerv1.ReplayDeadLettersResponse
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return last, nil
		}
		if err != nil {
			return last, err
		}
		last = m
	}
}

func TestDeadLettersListAndReplay(t *testing.T) {
	t.Parallel()
	h := newBusHarness(t)
	runA, runB, runC := "11111111-0000-4000-8000-000000000001", "11111111-0000-4000-8000-000000000002", "11111111-0000-4000-8000-000000000003"
	h.deadLetter(t, "mapper", "acme", runA, "payment_method_not_mapped", bus.OutboxSubject("acme", "invoice.created"))
	h.deadLetter(t, "mapper", "acme", runB, "contact_reference_reserved", bus.OutboxSubject("acme", "invoice.created"))
	h.deadLetter(t, "sage-writer", "beta", runC, "payment_method_not_mapped", bus.OutboxSubject("beta", "invoice.created"))
	h.deadLetter(t, "mapper", "acme", runA, "payment_method_not_mapped", "ledger.dlq.mapper.acme.invoice") // never replayable

	list := func(f *ledgerv1.DeadLetterFilter) []*ledgerv1.DeadLetterSummary {
		t.Helper()
		resp, err := h.client.ListDeadLetters(h.ctx(t), &ledgerv1.ListDeadLettersRequest{Filter: f})
		if err != nil {
			t.Fatalf("ListDeadLetters(%v): %v", f, err)
		}
		return resp.GetDeadLetters()
	}
	if got := list(nil); len(got) != 4 || got[0].GetDeadLetter().GetSyncRunId() != runA || got[0].GetSequence() != 1 {
		t.Fatalf("all: %v", got)
	}
	if got := list(&ledgerv1.DeadLetterFilter{TenantId: "acme", Stage: "mapper", ErrorCode: "payment_method_not_mapped"}); len(got) != 2 {
		t.Fatalf("acme mapper payment: %d", len(got))
	}
	if got := list(&ledgerv1.DeadLetterFilter{SyncRunIds: []string{runC}}); len(got) != 1 || got[0].GetSubject() != "ledger.dlq.sage-writer.beta.invoice" {
		t.Fatalf("by run: %v", got)
	}
	if got := list(&ledgerv1.DeadLetterFilter{Since: timestamppb.New(time.Now().Add(time.Hour))}); len(got) != 0 {
		t.Fatalf("future since: %d", len(got))
	}
	if _, err := h.client.ListDeadLetters(h.ctx(t), &ledgerv1.ListDeadLettersRequest{Filter: &ledgerv1.DeadLetterFilter{Stage: "ingest"}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad stage: %v", err)
	}

	// Dry run counts and moves nothing.
	p, err := h.replay(t, &ledgerv1.ReplayDeadLettersRequest{Filter: &ledgerv1.DeadLetterFilter{ErrorCode: "payment_method_not_mapped"}, DryRun: true})
	if err != nil || p.GetMatched() != 3 || p.GetReplayed() != 0 || !p.GetDone() || len(list(nil)) != 4 {
		t.Fatalf("dry run: %v %v", p, err)
	}

	outbox, err := h.js.OrderedConsumer(t.Context(), bus.StreamOutbox, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p, err = h.replay(t, &ledgerv1.ReplayDeadLettersRequest{Filter: &ledgerv1.DeadLetterFilter{TenantId: "acme"}, Rate: 100})
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if p.GetMatched() != 3 || p.GetReplayed() != 2 || p.GetFailed() != 1 || !strings.Contains(p.GetMessage(), "not one of Ledger's work streams") {
		t.Fatalf("replay: %v", p)
	}
	for _, want := range []string{runA, runB} {
		m, err := outbox.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("replayed original not in OUTBOX: %v", err)
		}
		ev := &ledgerv1.OutboxEvent{}
		_ = proto.Unmarshal(m.Data(), ev)
		if ev.GetSyncRunId() != want || m.Subject() != "ledger.outbox.acme.invoice.created" ||
			m.Headers().Get(bus.HeaderType) != "ledger.v1.OutboxEvent" || m.Headers().Get(bus.HeaderTraceparent) == "" ||
			strings.Contains(m.Headers().Get(bus.HeaderTraceparent), originalTraceparent[3:35]) {
			t.Fatalf("replayed %s on %s with %v", ev.GetSyncRunId(), m.Subject(), m.Headers())
		}
	}
	rest := list(nil)
	if len(rest) != 2 || rest[0].GetDeadLetter().GetTenantId() != "beta" || rest[1].GetDeadLetter().GetOriginalSubject() != "ledger.dlq.mapper.acme.invoice" {
		t.Fatalf("left in the DLQ: %v", rest)
	}
	// Replaying again finds only the unreplayable one.
	if p, err = h.replay(t, &ledgerv1.ReplayDeadLettersRequest{Filter: &ledgerv1.DeadLetterFilter{TenantId: "acme"}}); err != nil || p.GetReplayed() != 0 || p.GetFailed() != 1 {
		t.Fatalf("second replay: %v %v", p, err)
	}
}

func TestSetXrefAndPolicy(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "acme")
	r, err := h.client.SetXref(h.ctx(t), &ledgerv1.SetXrefRequest{TenantId: "acme", Kind: "contact", MagentoKey: "M42", Currency: "gbp", SageId: "c-1"})
	if err != nil || r.GetPreviousSageId() != "" {
		t.Fatalf("SetXref: %v %v", r, err)
	}
	r, err = h.client.SetXref(h.ctx(t), &ledgerv1.SetXrefRequest{TenantId: "acme", Kind: "contact", MagentoKey: "M42", Currency: "GBP", SageId: "c-2", Reference: "M42"})
	if err != nil || r.GetPreviousSageId() != "c-1" {
		t.Fatalf("relink: %v %v", r, err)
	}
	if x, _ := h.st.Xref(t.Context(), "acme", "contact", "M42", "GBP"); x.SageID != "c-2" || x.Reference != "M42" {
		t.Fatalf("stored %+v", x)
	}
	for _, bad := range []*ledgerv1.SetXrefRequest{
		{TenantId: "acme", Kind: "order", MagentoKey: "1", SageId: "x"},
		{TenantId: "acme", Kind: "invoice", SageId: "x"},
		{TenantId: "acme", Kind: "invoice", MagentoKey: "1"},
		{TenantId: "acme", Kind: "invoice", MagentoKey: "1", SageId: "x", Currency: "pounds"},
	} {
		if _, err := h.client.SetXref(h.ctx(t), bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("SetXref(%v): %v", bad, err)
		}
	}

	g, err := h.client.GetPolicy(h.ctx(t), &ledgerv1.GetPolicyRequest{TenantId: "acme"})
	if err != nil || g.GetPolicyJson() != "{}" {
		t.Fatalf("GetPolicy: %q %v", g.GetPolicyJson(), err)
	}
	_, err = h.client.SetPolicy(h.ctx(t), &ledgerv1.SetPolicyRequest{TenantId: "acme", PolicyJson: `{"home_country":"GBR","tax_rate_map":{"20":"X"}}`})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "home_country") || !strings.Contains(err.Error(), "tax_rate_map") {
		t.Fatalf("invalid policy: %v", err)
	}
	if _, err = h.client.SetPolicy(h.ctx(t), &ledgerv1.SetPolicyRequest{TenantId: "acme", PolicyJson: `{"colour":"blue"}`}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "colour") {
		t.Fatalf("unknown key: %v", err)
	}
	s, err := h.client.SetPolicy(h.ctx(t), &ledgerv1.SetPolicyRequest{TenantId: "acme", PolicyJson: `{"sync_products": true, "invoice_number_prefix": "MG"}`})
	if err != nil || !strings.Contains(s.GetPolicyJson(), `"invoice_number_prefix": "MG"`) {
		t.Fatalf("SetPolicy: %v %v", s, err)
	}
	g, _ = h.client.GetPolicy(h.ctx(t), &ledgerv1.GetPolicyRequest{TenantId: "acme"})
	if g.GetPolicyJson() != s.GetPolicyJson() {
		t.Fatalf("GetPolicy after set: %s", g.GetPolicyJson())
	}
}

func TestRefreshReferenceData(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "acme")
	if _, err := h.client.RefreshReferenceData(h.ctx(t), &ledgerv1.RefreshReferenceDataRequest{TenantId: "acme"}); status.Code(err) != codes.FailedPrecondition ||
		!strings.Contains(err.Error(), "sage connect") {
		t.Fatalf("before connecting: %v", err)
	}
	h.connectSage(t, "acme")
	// An expired access token is refreshed first.
	if _, err := h.st.Pool().Exec(t.Context(), `UPDATE oauth_tokens SET access_expires_at = now() WHERE tenant_id = 'acme'`); err != nil {
		t.Fatal(err)
	}
	before, _ := h.st.Tokens(t.Context(), "acme")
	resp, err := h.client.RefreshReferenceData(h.ctx(t), &ledgerv1.RefreshReferenceDataRequest{TenantId: "acme"})
	if err != nil {
		t.Fatalf("RefreshReferenceData: %v", err)
	}
	if resp.GetCounts()[admin.RefTaxRates] == 0 || resp.GetCounts()[admin.RefLedgerAccounts] == 0 {
		t.Fatalf("counts %v", resp.GetCounts())
	}
	if after, _ := h.st.Tokens(t.Context(), "acme"); after.Version == before.Version || after.Refresh == before.Refresh {
		t.Fatal("the expired access token was not refreshed")
	}
}

// connectSage runs the Sage OAuth flow through the admin's HTTP endpoints.
func (h *harness) connectSage(t *testing.T, tenant string) {
	t.Helper()
	start, err := h.client.StartSageConnect(h.ctx(t), &ledgerv1.StartSageConnectRequest{TenantId: tenant})
	if err != nil {
		t.Fatal(err)
	}
	code, callback, body := h.get(t, start.GetAuthorizeUrl(), nil)
	if code != http.StatusFound {
		t.Fatalf("authorize: %d %s", code, body)
	}
	if code, _, body = h.get(t, callback, nil); code != http.StatusOK {
		t.Fatalf("callback: %d %s", code, body)
	}
}

var _ grpc.ServerStreamingClient[ledgerv1.BackfillSyncStateResponse] = nil

func TestSetPolicyChecksSageReferences(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "acme")
	h.connectSage(t, "acme")
	g, err := h.client.GetPolicy(h.ctx(t), &ledgerv1.GetPolicyRequest{TenantId: "acme"})
	if err != nil || !strings.Contains(g.GetPolicyJson(), "default_ledger_account_id") {
		t.Fatalf("policy after connect: %v %v", g, err)
	}
	// The connected policy with one stale id is refused, naming the field.
	bad := strings.Replace(g.GetPolicyJson(), `"zero_tax_rate_id": "GB_ZERO"`, `"zero_tax_rate_id": "NO_SUCH_RATE"`, 1)
	if bad == g.GetPolicyJson() {
		t.Fatalf("policy has no GB_ZERO zero rate:\n%s", g.GetPolicyJson())
	}
	_, err = h.client.SetPolicy(h.ctx(t), &ledgerv1.SetPolicyRequest{TenantId: "acme", PolicyJson: bad})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `zero_tax_rate_id "NO_SUCH_RATE" is not a tax rate`) {
		t.Fatalf("stale id: %v", err)
	}
	if _, err := h.client.SetPolicy(h.ctx(t), &ledgerv1.SetPolicyRequest{TenantId: "acme", PolicyJson: g.GetPolicyJson()}); err != nil {
		t.Fatalf("the connected policy itself: %v", err)
	}
}
