package statecallback_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/statecallback"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

func TestMain(m *testing.M) { devtest.Main(m) }

const tenantID = "t1"

// harness is a running statecallback against real Postgres and NATS, delivering
// to a paired simulated shop behind a fault injector.
type harness struct {
	t      *testing.T
	st     *store.Store
	js     jetstream.JetStream
	shop   *magentosim.Shop
	srv    *httptest.Server
	faults *faults
	apiKey string
	cfg    statecallback.Config
	// logLevel of the service's logs (Warn; tests with thousands of failed
	// attempts raise it).
	logLevel slog.Level
	svc      *statecallback.Service
	stop     func()
	// dropped counts JetStream's MAX_DELIVERIES advisories for the consumer:
	// results the server gave up on without bus.Settle seeing their last
	// delivery, i.e. lost (neither re-queued nor dead-lettered). Every test
	// checks it is 0 when it ends.
	dropped atomic.Int64
}

// settleWithin bounds how long a test waits for results to be delivered and
// settled once nothing stands in their way (the shop answers, the binding is
// active). The service needs a fraction of a second; the bound leaves room for
// a busy machine, and stays well under the consumer's ack wait (newHarness
// checks), so a result that waits out an ack wait — left behind by a stopped
// replica — fails the test as late instead of arriving just in time.
const settleWithin = 10 * time.Second

// faults sits in front of the shop: it records every sync-state body by
// magento_entity_id and can answer the next calls for an id itself. It is also
// the spy of the newest-wins guarantee: it records, per entity, every body the
// shop stored (2xx) in the order the shop stored them, and whether two calls
// for one entity were ever in the shop at the same time.
type faults struct {
	mu       sync.Mutex
	queue    map[int64][]fault
	bodies   map[int64][]string
	stored   map[int64][]string // bodies answered 2xx, in order
	inShop   map[int64]int      // calls for an entity being handled right now
	overlaps int                // times a second call for an entity arrived while one was in the shop
	statuses map[int]int        // sync-state answers by HTTP status
	busy     int                // calls being handled right now, all entities
	maxBusy  int                // the most calls ever handled at once
	// latency is how long the shop takes to store a row (0: at once).
	latency time.Duration
}

type fault struct {
	status int
	body   string
	// hang holds the answer back this long (or until the caller gives up): a
	// shop that does not answer.
	hang time.Duration
}

func newFaults() *faults {
	return &faults{queue: map[int64][]fault{}, bodies: map[int64][]string{}, stored: map[int64][]string{},
		inShop: map[int64]int{}, statuses: map[int]int{}}
}

func (f *faults) inject(id int64, fl ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue[id] = append(f.queue[id], fl...)
}

func (f *faults) seen(id int64) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.bodies[id]...)
}

// calls is the number of sync-state POSTs the shop received.
func (f *faults) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.statuses {
		n += c
	}
	return n
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (f *faults) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/V1/byte8/sync-state") {
			next.ServeHTTP(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		var v struct {
			ID int64 `json:"magento_entity_id"`
		}
		_ = json.Unmarshal(b, &v)
		f.mu.Lock()
		f.bodies[v.ID] = append(f.bodies[v.ID], string(b))
		q := f.queue[v.ID]
		if len(q) > 0 {
			f.queue[v.ID] = q[1:]
			f.statuses[q[0].status]++
			f.mu.Unlock()
			if q[0].hang > 0 {
				select {
				case <-time.After(q[0].hang):
				case <-r.Context().Done():
				}
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(q[0].status)
			_, _ = io.WriteString(w, q[0].body)
			return
		}
		f.inShop[v.ID]++
		if f.inShop[v.ID] > 1 {
			f.overlaps++
		}
		f.busy++
		f.maxBusy = max(f.maxBusy, f.busy)
		latency := f.latency
		f.mu.Unlock()
		if latency > 0 {
			time.Sleep(latency) // the shop's own latency, simulated: nothing to wait for
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		// The shop stores the row inside ServeHTTP; since calls for one entity
		// never overlap (checked above), the order recorded here is the order
		// the rows were written.
		next.ServeHTTP(rec, r)
		f.mu.Lock()
		f.inShop[v.ID]--
		f.busy--
		f.statuses[rec.status]++
		if rec.status/100 == 2 {
			f.stored[v.ID] = append(f.stored[v.ID], string(b))
		}
		f.mu.Unlock()
	})
}

func newHarness(t *testing.T, opts ...func(*harness)) *harness {
	t.Helper()
	ctx := t.Context()
	sealer, _ := secrets.NewRandomKeyRing()
	st, err := store.Open(ctx, devtest.Database(t), sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	nc, err := nats.Connect(devtest.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}

	shop := magentosim.New(magentosim.Config{})
	f := newFaults()
	srv := httptest.NewServer(f.wrap(shop.Handler()))
	t.Cleanup(srv.Close)

	// Pair the way the admin does: the merchant generates a code in the shop,
	// Ledger calls /setup/pair with a fresh key and stores the binding.
	if _, err := st.CreateTenant(ctx, tenantID, "Test shop"); err != nil {
		t.Fatal(err)
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	apiKey := "byte8_lk_" + hex.EncodeToString(k[:])
	req := magento.PairRequest{PairingCode: shop.GeneratePairingCode(), TenantID: tenantID, APIKey: apiKey, LedgerBaseURL: "https://ledger.example.test"}
	if err := magento.Pair(ctx, srv.Client(), srv.URL, req); err != nil {
		t.Fatal(err)
	}
	if err := st.SetMagentoPaired(ctx, tenantID, srv.URL, apiKey); err != nil {
		t.Fatal(err)
	}

	h := &harness{t: t, st: st, js: js, shop: shop, srv: srv, faults: f, apiKey: apiKey, logLevel: slog.LevelWarn}
	adv, err := nc.Subscribe(maxDeliveriesAdvisory, func(*nats.Msg) { h.dropped.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the service starts, so it runs after the service stops.
	t.Cleanup(func() {
		_ = adv.Unsubscribe()
		if n := h.dropped.Load(); n != 0 {
			t.Errorf("JetStream dropped %d results at its MaxDeliver without bus.Settle seeing their last delivery: lost", n)
		}
	})
	h.cfg = statecallback.Config{
		// Production's ack wait is 5 s. The tests use one longer than any of
		// their waits, so a result left to time out (handed back by nobody)
		// fails them as late instead of arriving in time.
		AckWait: 2 * settleWithin,
		Workers: 4, HTTPTimeout: 5 * time.Second,
		RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, ParkDelay: 300 * time.Millisecond,
	}
	for _, o := range opts {
		o(h)
	}
	h.start()
	t.Cleanup(func() { h.stop() })
	if aw := h.svc.ConsumerSpec().AckWait; aw < 2*settleWithin {
		t.Fatalf("ack wait %s: the deadlines (settleWithin %s) no longer tell a late result from a prompt one", aw, settleWithin)
	}
	return h
}

// maxDeliveriesAdvisory is where JetStream reports a message of the consumer
// it stopped redelivering because it reached the consumer's MaxDeliver.
var maxDeliveriesAdvisory = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + bus.StreamResults + "." + statecallback.Durable

// start runs a fresh Service (a new process, as far as the bus and the store
// can tell) with h.cfg; h.svc and h.stop are that service.
func (h *harness) start() {
	h.t.Helper()
	h.svc, h.stop = h.run()
}

// addReplica runs one more Service on the same consumer, like a second
// replica; it stops when the test ends.
func (h *harness) addReplica() {
	h.t.Helper()
	_, stop := h.run()
	h.t.Cleanup(stop)
}

func (h *harness) run() (*statecallback.Service, func()) {
	h.t.Helper()
	log := slog.New(slog.NewTextHandler(h.t.Output(), &slog.HandlerOptions{Level: h.logLevel}))
	svc, err := statecallback.New(h.cfg, h.st, h.js, log)
	if err != nil {
		h.t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	return svc, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			h.t.Error("Run did not return after cancel")
		}
	}
}

// killableReplica runs one more Service on a NATS connection of its own. kill
// is a crash as far as the bus can tell: the connection goes first, so nothing
// the replica holds is settled or handed back; it comes back after the ack
// wait. (Its entity locks go when Run returns, as they would with the process.)
func (h *harness) killableReplica() (kill func()) {
	h.t.Helper()
	nc, err := nats.Connect(h.js.Conn().ConnectedUrl())
	if err != nil {
		h.t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		h.t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(h.t.Output(), &slog.HandlerOptions{Level: h.logLevel}))
	svc, err := statecallback.New(h.cfg, h.st, js, log)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	var once sync.Once
	kill = func() {
		once.Do(func() {
			nc.Close()
			cancel()
			<-done
		})
	}
	h.t.Cleanup(kill)
	devtest.Eventually(h.t, "the replica to consume", func() bool { return ready(svc) })
	return kill
}

// ready reports whether svc is ready (its consumer runs).
func ready(svc *statecallback.Service) bool { return svc.Consuming(context.Background()) == nil }

// restart stops the service and starts a new one.
func (h *harness) restart() {
	h.t.Helper()
	h.stop()
	h.start()
}

func (h *harness) publish(res *ledgerv1.SyncResult) []byte {
	h.t.Helper()
	if res.TenantId == "" {
		res.TenantId = tenantID
	}
	if res.SyncRunId == "" {
		res.SyncRunId = uuid.NewString()
	}
	if _, err := bus.Publish(h.t.Context(), h.js, bus.ResultSubject(res.TenantId, res.EntityType), res, ""); err != nil {
		h.t.Fatal(err)
	}
	b, _ := proto.Marshal(res)
	return b
}

// row waits for the sync-state row of an entity to reach status.
func (h *harness) row(entityType string, id int64, status string) magentosim.SyncStateRow {
	h.t.Helper()
	var row magentosim.SyncStateRow
	devtest.Eventually(h.t, entityType+" "+status, func() bool {
		var ok bool
		row, ok = h.shop.SyncState(entityType, id)
		return ok && row.SyncStatus == status
	})
	return row
}

// drained waits until the consumer has settled everything published so far.
func (h *harness) drained() {
	h.t.Helper()
	// JetStream updates a consumer's pending count a moment after a publish
	// is acknowledged: "nothing pending" only counts once the consumer has
	// also been handed everything published so far.
	str, err := h.js.Stream(h.t.Context(), bus.StreamResults)
	if err != nil {
		h.t.Fatal(err)
	}
	sinfo, err := str.Info(h.t.Context())
	if err != nil {
		h.t.Fatal(err)
	}
	published := sinfo.State.LastSeq
	devtest.Eventually(h.t, "the consumer to settle every result", func() bool {
		info, err := h.consumerInfo()
		return err == nil && info.Delivered.Stream >= published && info.NumPending == 0 && info.NumAckPending == 0
	}, devtest.Within(settleWithin), devtest.Explain(h.consumerState))
}

func (h *harness) consumerInfo() (*jetstream.ConsumerInfo, error) {
	c, err := h.js.Consumer(h.t.Context(), bus.StreamResults, statecallback.Durable)
	if err != nil {
		return nil, err
	}
	return c.Info(h.t.Context())
}

// consumerState says where the unsettled results are, to tell a late result
// from a lost one: ack pending that does not move is held by a replica that
// stopped without handing it back (it returns after the ack wait: late);
// results JetStream dropped at its MaxDeliver never return (lost).
func (h *harness) consumerState() string {
	info, err := h.consumerInfo()
	if err != nil {
		return "consumer info: " + err.Error()
	}
	return fmt.Sprintf("consumer: %d pending, %d ack pending (delivered, not settled or waiting for redelivery; ack wait %s), "+
		"%d redelivered, ack floor %d of %d delivered; %d dropped by JetStream at MaxDeliver (lost)",
		info.NumPending, info.NumAckPending, info.Config.AckWait, info.NumRedelivered,
		info.AckFloor.Stream, info.Delivered.Stream, h.dropped.Load())
}

func (h *harness) deadLetter(entity string) (*ledgerv1.DeadLetter, bool) {
	h.t.Helper()
	s, err := h.js.Stream(h.t.Context(), bus.StreamDLQ)
	if err != nil {
		h.t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(h.t.Context(), bus.DLQSubject(statecallback.Stage, tenantID, entity))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, false
	}
	if err != nil {
		h.t.Fatal(err)
	}
	var dl ledgerv1.DeadLetter
	if err := proto.Unmarshal(m.Data, &dl); err != nil {
		h.t.Fatal(err)
	}
	return &dl, true
}

// unsettled is how many results the consumer has not settled yet (waiting,
// in flight or waiting for redelivery).
func (h *harness) unsettled() int {
	h.t.Helper()
	info, err := h.consumerInfo()
	if err != nil {
		h.t.Fatal(err)
	}
	return int(info.NumPending) + info.NumAckPending
}

// counter reads ledger_statecallback_results_total{outcome} (or, for
// outcome "calls", ledger_statecallback_calls_total) from /metrics.
func (h *harness) counter(outcome string) int {
	rec := httptest.NewRecorder()
	h.svc.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	prefix := `ledger_statecallback_results_total{outcome="` + outcome + `"} `
	if outcome == "calls" {
		prefix = "ledger_statecallback_calls_total "
	}
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return 0
}

// histogram reads a histogram's _count and _sum from /metrics.
func (h *harness) histogram(name string) (count, sum int) {
	rec := httptest.NewRecorder()
	h.svc.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(l, name+"_count "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			count = int(n)
		}
		if v, ok := strings.CutPrefix(l, name+"_sum "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			sum = int(n)
		}
	}
	return count, sum
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

var t0 = time.Date(2026, 4, 29, 10, 11, 12, 345678000, time.UTC)

func TestMirrorsTerminalResults(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	long := strings.Repeat("r", 70)
	h.publish(&ledgerv1.SyncResult{EntityType: "invoice", MagentoEntityId: 42, Status: ledgerv1.SyncStatus_SYNC_STATUS_SYNCED,
		ProviderEntityId: "df6b646cf16a4c9a8e2f", SkipReason: "leftover", ErrorCode: "leftover", FinishedAt: timestamppb.New(t0)})
	h.publish(&ledgerv1.SyncResult{EntityType: "creditmemo", MagentoEntityId: 7, Status: ledgerv1.SyncStatus_SYNC_STATUS_SKIPPED,
		SkipReason: "outside_sync_since", ProviderEntityId: "leftover", FinishedAt: timestamppb.New(t0)})
	h.publish(&ledgerv1.SyncResult{EntityType: "invoice", MagentoEntityId: 43, Status: ledgerv1.SyncStatus_SYNC_STATUS_FAILED,
		ErrorCode: "contact_reference_reserved", ErrorClass: "validation", FinishedAt: timestamppb.New(t0)})
	h.publish(&ledgerv1.SyncResult{EntityType: "customer", MagentoEntityId: 9, Status: ledgerv1.SyncStatus_SYNC_STATUS_FAILED,
		ErrorClass: "provider", FinishedAt: timestamppb.New(t0)})
	h.publish(&ledgerv1.SyncResult{EntityType: "product", MagentoEntityId: 5, Status: ledgerv1.SyncStatus_SYNC_STATUS_SKIPPED,
		SkipReason: long, FinishedAt: timestamppb.New(t0)})
	// What a synced run did: a creation is plain synced; an update or no
	// change says so in skip_reason (the row has no other column for it).
	h.publish(&ledgerv1.SyncResult{EntityType: "customer", MagentoEntityId: 10, Status: ledgerv1.SyncStatus_SYNC_STATUS_SYNCED,
		ProviderEntityId: "c10", Change: "updated", FinishedAt: timestamppb.New(t0)})
	h.publish(&ledgerv1.SyncResult{EntityType: "customer", MagentoEntityId: 11, Status: ledgerv1.SyncStatus_SYNC_STATUS_SYNCED,
		ProviderEntityId: "c11", Change: "unchanged", FinishedAt: timestamppb.New(t0)})
	h.publish(&ledgerv1.SyncResult{EntityType: "product", MagentoEntityId: 12, Status: ledgerv1.SyncStatus_SYNC_STATUS_SYNCED,
		ProviderEntityId: "p12", Change: "created", FinishedAt: timestamppb.New(t0)})
	// Magento would refuse these with a 400; they are never sent.
	h.publish(&ledgerv1.SyncResult{EntityType: "payment", MagentoEntityId: 99, Status: ledgerv1.SyncStatus_SYNC_STATUS_SYNCED, FinishedAt: timestamppb.New(t0)})
	h.publish(&ledgerv1.SyncResult{EntityType: "invoice", MagentoEntityId: 0, Status: ledgerv1.SyncStatus_SYNC_STATUS_SYNCED, FinishedAt: timestamppb.New(t0)})

	wantAt := time.Date(2026, 4, 29, 10, 11, 12, 0, time.UTC)
	for _, c := range []struct {
		entity                            string
		id                                int64
		status, providerID, skip, errCode string
	}{
		{"invoice", 42, "synced", "df6b646cf16a4c9a8e2f", "<nil>", "<nil>"},
		{"creditmemo", 7, "skipped", "<nil>", "outside_sync_since", "<nil>"},
		{"invoice", 43, "failed", "<nil>", "<nil>", "contact_reference_reserved"},
		{"customer", 9, "failed", "<nil>", "<nil>", "provider"},
		{"product", 5, "skipped", "<nil>", long[:64], "<nil>"},
		{"customer", 10, "synced", "c10", "updated", "<nil>"},
		{"customer", 11, "synced", "c11", "unchanged", "<nil>"},
		{"product", 12, "synced", "p12", "<nil>", "<nil>"},
	} {
		row := h.row(c.entity, c.id, c.status)
		if str(row.ProviderEntityID) != c.providerID || str(row.SkipReason) != c.skip || str(row.ErrorCode) != c.errCode ||
			row.ProviderReference != nil || row.Provider != "sage_accounting" || !row.LastSyncAt.Equal(wantAt) {
			t.Errorf("%s %d: row %+v (provider_entity_id %s, skip_reason %s, error_code %s), want provider_entity_id %s, skip_reason %s, error_code %s, last_sync_at %s",
				c.entity, c.id, row, str(row.ProviderEntityID), str(row.SkipReason), str(row.ErrorCode), c.providerID, c.skip, c.errCode, wantAt)
		}
	}
	// The exact wire body: MySQL timestamp, explicit nulls.
	bodies := h.faults.seen(42)
	if len(bodies) != 1 {
		t.Fatalf("invoice 42: %d sync-state calls, want 1", len(bodies))
	}
	var body map[string]any
	_ = json.Unmarshal([]byte(bodies[0]), &body)
	if body["last_sync_at"] != "2026-04-29 10:11:12" || body["sync_status"] != "synced" || body["provider"] != "sage_accounting" ||
		body["magento_entity_id"] != float64(42) {
		t.Errorf("invoice 42 body %s", bodies[0])
	}
	for _, k := range []string{"provider_reference", "skip_reason", "error_code"} {
		if v, ok := body[k]; !ok || v != nil {
			t.Errorf("invoice 42 body: %s = %v (present %v), want an explicit null", k, v, ok)
		}
	}
	h.drained()
	if n := len(h.faults.seen(99)) + len(h.faults.seen(0)); n != 0 {
		t.Errorf("%d sync-state calls for unmirrored results", n)
	}
	if at, ok, err := h.st.CallbackMark(t.Context(), tenantID, "invoice", 42); err != nil || !ok || !at.Equal(t0.Truncate(time.Microsecond)) {
		t.Errorf("callback mark = %s, %v, %v; want %s", at, ok, err, t0)
	}

	// Readiness and metrics.
	if err := h.svc.Consuming(t.Context()); err != nil {
		t.Errorf("a consuming service is not ready: %v", err)
	}
	rec := httptest.NewRecorder()
	h.svc.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `ledger_statecallback_results_total{outcome="delivered"} 8`) ||
		!strings.Contains(rec.Body.String(), `ledger_statecallback_results_total{outcome="ignored"} 2`) {
		t.Errorf("/metrics lacks the expected counters:\n%s", grep(rec.Body.String(), "ledger_statecallback_results_total"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestStaleResultIsNeverSent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	newer := &ledgerv1.SyncResult{EntityType: "invoice", MagentoEntityId: 50, Status: ledgerv1.SyncStatus_SYNC_STATUS_FAILED,
		ErrorCode: "provider", FinishedAt: timestamppb.New(t0.Add(time.Hour))}
	older := &ledgerv1.SyncResult{EntityType: "invoice", MagentoEntityId: 50, Status: ledgerv1.SyncStatus_SYNC_STATUS_SYNCED,
		ProviderEntityId: "old", FinishedAt: timestamppb.New(t0)}
	h.publish(newer)
	h.row("invoice", 50, "failed")
	h.publish(older)
	h.drained()
	if row, _ := h.shop.SyncState("invoice", 50); row.SyncStatus != "failed" || str(row.ErrorCode) != "provider" {
		t.Errorf("row after a stale result: %+v, want the newer failed state", row)
	}
	if n := len(h.faults.seen(50)); n != 1 {
		t.Errorf("%d sync-state calls, want 1 (the stale result must not be sent)", n)
	}

	// Both in flight at once, newest first: whatever the workers do, the row
	// ends with the newest.
	h.publish(&ledgerv1.SyncResult{EntityType: "invoice", MagentoEntityId: 51, Status: ledgerv1.SyncStatus_SYNC_STATUS_SYNCED,
		ProviderEntityId: "new", FinishedAt: timestamppb.New(t0.Add(2 * time.Hour))})
	h.publish(&ledgerv1.SyncResult{EntityType: "invoice", MagentoEntityId: 51, Status: ledgerv1.SyncStatus_SYNC_STATUS_FAILED,
		ErrorCode: "provider", FinishedAt: timestamppb.New(t0.Add(time.Hour))})
	h.drained()
	if row, _ := h.shop.SyncState("invoice", 51); row.SyncStatus != "synced" || str(row.ProviderEntityID) != "new" {
		t.Errorf("row after racing results: %+v, want the newer synced state", row)
	}
}

// TestHungCallDoesNotHoldUpTheShop: while one call to a shop hangs, the shop's
// next results are delivered by another batch (up to PerShop batches in
// flight), not after the hung call returns.
func TestHungCallDoesNotHoldUpTheShop(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const hang = 4 * time.Second // under the harness's 5 s call timeout
	h.faults.inject(60, fault{status: http.StatusOK, body: "[]", hang: hang})
	h.publish(&ledgerv1.SyncResult{EntityType: "invoice", MagentoEntityId: 60, Status: ledgerv1.SyncStatus_SYNC_STATUS_SYNCED,
		ProviderEntityId: "hung", FinishedAt: timestamppb.New(t0)})
	devtest.Eventually(t, "the call for invoice 60 to reach the shop", func() bool { return len(h.faults.seen(60)) == 1 })
	started := time.Now()
	h.publish(&ledgerv1.SyncResult{EntityType: "invoice", MagentoEntityId: 61, Status: ledgerv1.SyncStatus_SYNC_STATUS_SYNCED,
		ProviderEntityId: "next", FinishedAt: timestamppb.New(t0)})
	h.row("invoice", 61, "synced")
	if waited := time.Since(started); waited >= hang {
		t.Errorf("invoice 61 was delivered after %s, behind the hung call for invoice 60 (%s)", waited, hang)
	}
	h.drained()
}

func TestShopDownThenUpIsDelivered(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.shop.SetDown(true)
	h.publish(&ledgerv1.SyncResult{EntityType: "invoice", MagentoEntityId: 60, Status: ledgerv1.SyncStatus_SYNC_STATUS_SYNCED,
		ProviderEntityId: "sage-60", FinishedAt: timestamppb.New(t0)})
	devtest.Eventually(t, "three attempts against the down shop", func() bool { return len(h.faults.seen(60)) >= 3 })
	h.shop.SetDown(false)
	row := h.row("invoice", 60, "synced")
	if str(row.ProviderEntityID) != "sage-60" {
		t.Errorf("row %+v", row)
	}
	if _, ok := h.deadLetter("invoice"); ok {
		t.Error("a retried result was dead-lettered")
	}
}

func TestCouldNotUpsertIsRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	notSaved := fault{status: http.StatusBadRequest, body: `{"message":"Could not upsert sync state for %1/%2: %3","parameters":["invoice",61,"SQLSTATE[HY000]: General error: 2006 MySQL server has gone away"]}`}
	h.faults.inject(61, notSaved, notSaved)
	h.publish(&ledgerv1.SyncResult{EntityType: "invoice", MagentoEntityId: 61, Status: ledgerv1.SyncStatus_SYNC_STATUS_SKIPPED,
		SkipReason: "zero_value_invoice", FinishedAt: timestamppb.New(t0)})
	h.row("invoice", 61, "skipped")
	if n := len(h.faults.seen(61)); n != 3 {
		t.Errorf("%d sync-state calls, want 3 (two refused, one saved)", n)
	}
}

func TestPlainBadRequestIsDeadLettered(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.faults.inject(62, fault{status: http.StatusBadRequest, body: `{"message":"Unknown entity_type %1; expected one of: %2","parameters":["invoice","creditmemo"]}`})
	runID := uuid.NewString()
	original := h.publish(&ledgerv1.SyncResult{SyncRunId: runID, EntityType: "invoice", MagentoEntityId: 62,
		Status: ledgerv1.SyncStatus_SYNC_STATUS_SYNCED, ProviderEntityId: "sage-62", FinishedAt: timestamppb.New(t0)})
	var dl *ledgerv1.DeadLetter
	devtest.Eventually(t, "a dead letter", func() bool {
		var ok bool
		dl, ok = h.deadLetter("invoice")
		return ok
	})
	if dl.GetStage() != "statecallback" || dl.GetErrorClass() != "http" || dl.GetErrorCode() != "sync_state_rejected" ||
		dl.GetMessage() != "Unknown entity_type invoice; expected one of: creditmemo" || dl.GetHttpStatus() != 400 ||
		dl.GetTenantId() != tenantID || dl.GetSyncRunId() != runID || !bytes.Equal(dl.GetOriginal(), original) ||
		dl.GetOriginalSubject() != "ledger.result.t1.invoice" {
		t.Errorf("dead letter %v", dl)
	}
	h.drained()
	if _, ok := h.shop.SyncState("invoice", 62); ok {
		t.Error("a refused result has a row")
	}
	if n := len(h.faults.seen(62)); n != 1 {
		t.Errorf("%d sync-state calls, want 1 (a plain 400 is not retried)", n)
	}
}

func TestUnauthorizedParksUntilRepaired(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := t.Context()
	// Ledger's copy of the key drifts from the shop's.
	if err := h.st.SetMagentoPaired(ctx, tenantID, h.srv.URL, "byte8_lk_not_the_shops_key"); err != nil {
		t.Fatal(err)
	}
	h.publish(&ledgerv1.SyncResult{EntityType: "invoice", MagentoEntityId: 70, Status: ledgerv1.SyncStatus_SYNC_STATUS_SYNCED,
		ProviderEntityId: "sage-70", FinishedAt: timestamppb.New(t0)})
	devtest.Eventually(t, "the binding to be marked token_revoked", func() bool {
		tn, err := h.st.Tenant(ctx, tenantID)
		return err == nil && tn.Binding.MagentoConnectionStatus == store.StatusTokenRevoked
	})
	// Parked, not dropped: it keeps coming back (without calling the shop),
	// and nothing is dead-lettered.
	devtest.Eventually(t, "the parked result to be redelivered", func() bool { return h.counter("parked") >= 3 })
	if n := len(h.faults.seen(70)); n != 1 {
		t.Errorf("%d sync-state calls, want 1: a token_revoked shop is not called again", n)
	}
	if _, ok := h.deadLetter("invoice"); ok {
		t.Fatal("a parked result was dead-lettered")
	}
	if n := h.unsettled(); n != 1 {
		t.Fatalf("%d results unsettled; want the parked result still pending", n)
	}
	if _, ok := h.shop.SyncState("invoice", 70); ok {
		t.Fatal("row written with a refused key")
	}

	// The operator re-pairs (here: restores the right key); the result arrives.
	if err := h.st.SetMagentoPaired(ctx, tenantID, h.srv.URL, h.apiKey); err != nil {
		t.Fatal(err)
	}
	h.row("invoice", 70, "synced")
	tn, err := h.st.Tenant(ctx, tenantID)
	if err != nil || tn.Binding.MagentoConnectionStatus != store.StatusActive {
		t.Errorf("binding status %q, %v; want active", tn.Binding.MagentoConnectionStatus, err)
	}
}
