package main

// The benchmark's shops and clocks: simulated Magento shops served behind a
// recorder (it keeps the API key the shop is paired with, and the time each
// sync-state callback arrives), and a tracker that stamps every event when
// ingest publishes it to OUTBOX and when its result reaches RESULTS.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/magento"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// benchShop is one simulated shop served on its own port.
type benchShop struct {
	tenant string
	shop   *magentosim.Shop
	url    string
	srv    *http.Server
	apiKey atomic.Value // string, from the pairing request
	tr     *atomic.Pointer[tracker]
	cancel context.CancelFunc
}

func newBenchShop(tenant string, tr *atomic.Pointer[tracker], drain time.Duration) (*benchShop, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &benchShop{tenant: tenant, tr: tr, url: "http://" + ln.Addr().String(),
		shop: magentosim.New(magentosim.Config{DrainInterval: drain,
			Backoff:    []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, time.Second},
			HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}})}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

// run starts the shop's outbox cron.
func (b *benchShop) run() {
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go func() { _ = b.shop.Run(ctx) }()
}

func (b *benchShop) close() {
	if b.cancel != nil {
		b.cancel()
	}
	_ = b.srv.Close()
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

// ServeHTTP serves the shop, noting the pairing key and sync-state arrivals.
func (b *benchShop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		b.shop.Handler().ServeHTTP(w, r)
		return
	}
	pair, state := strings.HasSuffix(r.URL.Path, "/byte8/setup/pair"), strings.HasSuffix(r.URL.Path, "/byte8/sync-state")
	if !pair && !state {
		b.shop.Handler().ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	b.shop.Handler().ServeHTTP(rec, r)
	if rec.status/100 != 2 {
		return
	}
	if pair {
		var req magento.PairRequest
		if json.Unmarshal(body, &req) == nil {
			b.apiKey.Store(req.APIKey)
		}
		return
	}
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return
	}
	etype, _ := firstOf(m, "entity_type", "entityType").(string)
	idf, _ := firstOf(m, "magento_entity_id", "magentoEntityId").(float64)
	if t := b.tr.Load(); t != nil {
		t.synced(b.tenant, etype, int64(idf), time.Now())
	}
}

func firstOf(m map[string]any, keys ...string) any {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	return nil
}

// key is one sync-state row of one shop.
type key struct {
	tenant, etype string
	id            int64
}

type trackedEvent struct {
	key
	accepted, result time.Time
	finished         time.Time // the result's finished_at: statecallback's "newer"
}

// tracker follows one phase's events: accepted (published to OUTBOX), result
// (published to RESULTS) and sync-state callbacks.
type tracker struct {
	mu     sync.Mutex
	events map[string]*trackedEvent // by sync_run_id
	syncs  map[key][]time.Time
	// early holds results seen before their run's OutboxEvent: the observer's
	// two subscriptions are dispatched independently, and a run the mapper
	// skips at once can have its result handled first. Whatever is left at
	// the end is a result of a run this phase did not see accepted (stray).
	early   map[string]earlyResult
	results int
}

type earlyResult struct{ at, finished time.Time }

func newTracker() *tracker {
	return &tracker{events: map[string]*trackedEvent{}, syncs: map[key][]time.Time{}, early: map[string]earlyResult{}}
}

func (t *tracker) outbox(m *nats.Msg, at time.Time) {
	var ev ledgerv1.OutboxEvent
	if proto.Unmarshal(m.Data, &ev) != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.events[ev.GetSyncRunId()]; !ok {
		e := &trackedEvent{key: key{ev.GetTenantId(), magento.EntityType(ev.GetEvent()), ev.GetMagentoEntityId()}, accepted: at}
		t.events[ev.GetSyncRunId()] = e
		if r, ok := t.early[ev.GetSyncRunId()]; ok {
			delete(t.early, ev.GetSyncRunId())
			e.result, e.finished = r.at, r.finished
			t.results++
		}
	}
}

func (t *tracker) result(m *nats.Msg, at time.Time) {
	var r ledgerv1.SyncResult
	if proto.Unmarshal(m.Data, &r) != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.events[r.GetSyncRunId()]
	if !ok {
		if _, seen := t.early[r.GetSyncRunId()]; !seen {
			t.early[r.GetSyncRunId()] = earlyResult{at, r.GetFinishedAt().AsTime()}
		}
		return
	}
	if e.result.IsZero() {
		e.result, e.finished = at, r.GetFinishedAt().AsTime()
		t.results++
	}
}

func (t *tracker) synced(tenant, etype string, id int64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := key{tenant, etype, id}
	t.syncs[k] = append(t.syncs[k], at)
}

// syncSlack tolerates a sync-state callback stamped a moment before the
// result it reports by the clocks compared (syncAfter).
const syncSlack = 50 * time.Millisecond

// progress reports how many of the phase's events were accepted, have a result
// and have their sync-state callback.
func (t *tracker) progress() (accepted, results, synced int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	byKey := t.byKey()
	for _, e := range t.events {
		if e.result.IsZero() {
			continue
		}
		if !t.syncAfter(e).IsZero() || t.superseded(e, byKey) {
			synced++
		}
	}
	return len(t.events), t.results, synced
}

func (t *tracker) byKey() map[key][]*trackedEvent {
	m := map[key][]*trackedEvent{}
	for _, e := range t.events {
		m[e.key] = append(m[e.key], e)
	}
	return m
}

// superseded reports whether a newer result of e's row has had its callback:
// statecallback then rightly sends nothing for e (newest wins), so e needs
// no callback of its own.
func (t *tracker) superseded(e *trackedEvent, byKey map[key][]*trackedEvent) bool {
	for _, o := range byKey[e.key] {
		if o != e && !o.result.IsZero() && o.finished.After(e.finished) && !t.syncAfter(o).IsZero() {
			return true
		}
	}
	return false
}

// syncAfter is the first sync-state callback of e's row at or after its
// result: after the run finished (the result's finished_at, stamped by
// Postgres before the commit that precedes the result and its callback). The
// time the benchmark's own subscription saw the result is no bound: under a
// burst that subscription lags, by seconds at times, behind the callbacks
// the shops answer.
func (t *tracker) syncAfter(e *trackedEvent) time.Time {
	from := e.result
	if !e.finished.IsZero() {
		from = e.finished
	}
	for _, at := range t.syncs[e.key] {
		if !at.Before(from.Add(-syncSlack)) {
			return at
		}
	}
	return time.Time{}
}

// phaseTimes are one phase's end-to-end figures.
type phaseTimes struct {
	Events             int
	First, LastResult  time.Time // first accept, last result
	LastSync           time.Time
	ToResult, ToSync   []time.Duration // sorted
	MissingSync, Stray int
	// Superseded events had no callback of their own: a newer result of
	// the same row was delivered instead (newest wins).
	Superseded int
}

func (t *tracker) times() phaseTimes {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := phaseTimes{Events: len(t.events), Stray: len(t.early)}
	byKey := t.byKey()
	for _, e := range t.events {
		if p.First.IsZero() || e.accepted.Before(p.First) {
			p.First = e.accepted
		}
		if e.result.IsZero() {
			continue
		}
		p.LastResult = maxTime(p.LastResult, e.result)
		p.ToResult = append(p.ToResult, e.result.Sub(e.accepted))
		s := t.syncAfter(e)
		if s.IsZero() {
			if t.superseded(e, byKey) {
				p.Superseded++
			} else {
				p.MissingSync++
			}
			continue
		}
		p.LastSync = maxTime(p.LastSync, s)
		p.ToSync = append(p.ToSync, max(s.Sub(e.accepted), 0))
	}
	slices.Sort(p.ToResult)
	slices.Sort(p.ToSync)
	return p
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// quantile of sorted durations (0 when empty).
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(q*float64(len(d))+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}
