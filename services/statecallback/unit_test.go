package statecallback

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

func TestSyncStateFor(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 4, 29, 12, 11, 12, 999_000_000, time.FixedZone("CEST", 2*3600))
	res := &ledgerv1.SyncResult{EntityType: "invoice", MagentoEntityId: 42, ProviderEntityId: "p", SkipReason: "s",
		ErrorCode: "", ErrorClass: "http", ProviderReference: "SI-1", FinishedAt: timestamppb.New(at)}
	for status, want := range map[ledgerv1.SyncStatus]string{
		ledgerv1.SyncStatus_SYNC_STATUS_SYNCED:  "synced p <nil> <nil>",
		ledgerv1.SyncStatus_SYNC_STATUS_SKIPPED: "skipped <nil> s <nil>",
		ledgerv1.SyncStatus_SYNC_STATUS_FAILED:  "failed <nil> <nil> http",
	} {
		res.Status = status
		st, ok := SyncStateFor(res, at)
		got := strings.Join([]string{st.SyncStatus, s(st.ProviderEntityID), s(st.SkipReason), s(st.ErrorCode)}, " ")
		if !ok || got != want || st.ProviderReference != nil || st.LastSyncAt != "2026-04-29 10:11:12" || st.Provider != magento.ProviderSage {
			t.Errorf("%s: %q %+v, want %q", status, got, st, want)
		}
	}
	res.Status = ledgerv1.SyncStatus_SYNC_STATUS_UNSPECIFIED
	if _, ok := SyncStateFor(res, at); ok {
		t.Error("an unspecified status was mapped")
	}
	if got := s(column(strings.Repeat("é", 70))); got != strings.Repeat("é", 64) {
		t.Errorf("column cut to %d runes", len([]rune(got)))
	}
}

func s(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	svc := &Service{cfg: Config{}.WithDefaults(), jitter: func() float64 { return 0.5 }}
	for n, want := range map[uint64]time.Duration{1: 2 * time.Second, 2: 4 * time.Second, 5: 32 * time.Second,
		8: 256 * time.Second, 9: 5 * time.Minute, 64: 5 * time.Minute, 1000: 5 * time.Minute} {
		if got := svc.backoff(n); got != want {
			t.Errorf("backoff(%d) = %s, want %s", n, got, want)
		}
	}
	svc.jitter = func() float64 { return 0 }
	if got := svc.backoff(1); got != 1500*time.Millisecond {
		t.Errorf("low jitter: %s", got)
	}
	svc.jitter = func() float64 { return 0.999 }
	if got := svc.backoff(20); got != 5*time.Minute {
		t.Errorf("jitter above the cap: %s", got)
	}
}

func TestHTTPFailure(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		status int
		msg    string
		want   FailureKind
	}{
		{401, "The consumer isn't authorized", Unauthorized},
		{400, "Could not upsert sync state for invoice/1: gone away", Transient},
		{400, "magento_entity_id must be positive", Rejected},
		{404, "Request does not match any route.", Rejected},
		{429, "", Transient},
		{500, "Internal Error", Transient},
		{503, "", Transient},
	} {
		err := httpFailure(&magento.HTTPError{Status: c.status, Message: c.msg})
		if de := classify(err); de.Kind != c.want || de.Status != c.status || de.Message != c.msg {
			t.Errorf("%d %q: %+v, want %s", c.status, c.msg, de, c.want)
		}
	}
	if de := classify(errors.New("dial tcp: connection refused")); de.Kind != Transient {
		t.Errorf("network error: %s", de.Kind)
	}
	if httpFailure(nil) != nil {
		t.Error("nil error classified")
	}
}

func TestTakeCollapsesToNewest(t *testing.T) {
	t.Parallel()
	d := &dispatcher{s: &Service{cfg: Config{BatchSize: 2}}, runCtx: context.Background(), shops: map[string]*shopQueue{}}
	ent := func(id int64) store.CallbackEntity { return store.CallbackEntity{EntityType: "invoice", MagentoID: id} }
	dl := func(id int64, sec int, seq uint64) *delivery {
		return &delivery{entity: ent(id), finishedAt: time.Unix(int64(sec), 0), seq: seq}
	}
	q := &shopQueue{tenantID: "t", workers: 1, inflight: map[store.CallbackEntity]bool{ent(4): true}, pending: []*delivery{
		dl(1, 1, 1), dl(2, 1, 2), dl(1, 3, 3), dl(1, 2, 4), dl(3, 1, 5), dl(2, 1, 6), dl(4, 9, 7),
	}}
	batch, stale := d.take(q)
	seqs := func(ds []*delivery) (out []uint64) {
		for _, x := range ds {
			out = append(out, x.seq)
		}
		return out
	}
	if got := fmt.Sprint(seqs(batch), seqs(stale), seqs(q.pending)); got != "[3 6] [1 4 2] [5 7]" {
		t.Errorf("batch, stale, left = %s; want [3 6] [1 4 2] [5 7] (newest per entity, re-fired duplicate by sequence, full batch, entity 4 in flight)", got)
	}
	if !q.inflight[ent(1)] || !q.inflight[ent(2)] || q.workers != 1 {
		t.Errorf("inflight %v, workers %d", q.inflight, q.workers)
	}
	d.finish(q, batch)
	delete(q.inflight, ent(4))
	batch, stale = d.take(q)
	if got := fmt.Sprint(seqs(batch), seqs(stale)); got != "[5 7] []" {
		t.Errorf("second batch %s", got)
	}
	d.finish(q, batch)
	if d.await(q) || q.workers != 0 || len(d.shops) != 0 {
		t.Errorf("empty queue: worker not retired (workers %d)", q.workers)
	}
}

// TestAwaitSizesBatches: a shop's worker takes a batch once BatchSize results
// wait or the oldest has waited BatchLinger, not before.
func TestAwaitSizesBatches(t *testing.T) {
	t.Parallel()
	ent := func(id int64) store.CallbackEntity { return store.CallbackEntity{EntityType: "invoice", MagentoID: id} }
	newQueue := func(d *dispatcher) *shopQueue {
		q := &shopQueue{tenantID: "t", workers: 1, inflight: map[store.CallbackEntity]bool{}, wake: make(chan struct{}, 1)}
		d.shops["t"] = q
		return q
	}

	// A long linger: two fresh results wait; the third fills the batch.
	d := &dispatcher{s: &Service{cfg: Config{BatchSize: 3, BatchLinger: time.Hour}}, runCtx: context.Background(), shops: map[string]*shopQueue{}}
	q := newQueue(d)
	q.pending = []*delivery{{entity: ent(1), start: time.Now()}, {entity: ent(2), start: time.Now()}}
	ready := make(chan bool, 1)
	go func() { ready <- d.await(q) }()
	select {
	case <-ready:
		t.Fatal("a batch of 2 was taken before it was full or had waited an hour")
	case <-time.After(50 * time.Millisecond): // nothing to wait on: the absence of a return is the point
	}
	d.mu.Lock()
	q.pending = append(q.pending, &delivery{entity: ent(3), start: time.Now()})
	d.mu.Unlock()
	q.wake <- struct{}{}
	if !<-ready {
		t.Fatal("a full batch was not taken")
	}

	// A short linger: the oldest result's wait decides.
	d = &dispatcher{s: &Service{cfg: Config{BatchSize: 50, BatchLinger: 30 * time.Millisecond}}, runCtx: context.Background(), shops: map[string]*shopQueue{}}
	q = newQueue(d)
	arrived := time.Now()
	q.pending = []*delivery{{entity: ent(1), start: arrived}}
	if !d.await(q) {
		t.Fatal("worker retired with a result waiting")
	}
	if waited := time.Since(arrived); waited < 30*time.Millisecond {
		t.Errorf("batch taken after %s, before the linger of 30ms", waited)
	}
	// Results in flight are not waited for.
	q.inflight[ent(1)] = true
	if d.await(q) || q.workers != 0 {
		t.Error("worker waited for a result whose entity is in flight")
	}
}

func TestGRPCFailure(t *testing.T) {
	t.Parallel()
	for c, want := range map[codes.Code]FailureKind{
		codes.Unauthenticated: Unauthorized, codes.PermissionDenied: Unauthorized,
		codes.Unavailable: Transient, codes.DeadlineExceeded: Transient, codes.ResourceExhausted: Transient, codes.Internal: Transient,
		codes.InvalidArgument: Rejected, codes.Unimplemented: Rejected,
	} {
		if de := classify(grpcFailure(status.Error(c, "x"))); de.Kind != want {
			t.Errorf("%s: %s, want %s", c, de.Kind, want)
		}
	}
	for target, want := range map[string]bool{"127.0.0.1:9000": true, "[::1]:9000": true, "localhost:1": true,
		"dns:///127.0.0.1:9000": true, "shop.example.com:443": false, "10.0.0.1:443": false, "127.0.0.1": false} {
		if got := loopback(target); got != want {
			t.Errorf("loopback(%q) = %v", target, got)
		}
	}
}
