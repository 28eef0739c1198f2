package bus_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// gathered is the sum of a family's samples whose labels include want (a
// histogram's sample count).
func gathered(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum, found := 0.0, false
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			found = true
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum, found
}

// TestLoopMetrics runs a consumer with Metrics: the deliveries by
// settlement, the stage's durations and waits, the dead letters by class and
// code, and — read from NATS on scrape — the consumer's pending,
// ack-pending and redelivered counts, its tenant's backlog and the stage's
// dead-letter depth, which must equal what the DLQ stream holds.
func TestLoopMetrics(t *testing.T) {
	js := setup(t)
	reg := prometheus.NewRegistry()
	m := bus.NewMetrics(reg, js, bus.MetricsOptions{CacheFor: time.Nanosecond})
	const stage = "metricstest"
	spec := bus.ConsumerSpec{Stream: bus.StreamOutbox, Durable: "metrics-test", FilterSubjects: []string{"ledger.outbox.mt.>"},
		Stage: stage, Workers: 1, MaxAckPending: 1, Tenant: "mt", Metrics: m, AckWait: 2 * time.Second}

	// Entity 1 is acked, 2 dead-lettered, 3 retried once, then acked; 4 is
	// retried once, then held by its second delivery until released, while 5
	// waits behind it.
	release := make(chan struct{})
	var holding atomic.Bool
	handler := func(ctx context.Context, msg jetstream.Msg) bus.Outcome {
		var ev ledgerv1.OutboxEvent
		if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
			t.Error(err)
			return bus.Done()
		}
		meta, _ := msg.Metadata()
		switch id := ev.GetMagentoEntityId(); {
		case id == 2:
			return bus.Outcome{Verdict: bus.DeadLetter, Class: "validation", Code: "record_invalid", TenantID: "mt", Entity: "invoice"}
		case (id == 3 || id == 4) && meta.NumDelivered == 1:
			return bus.Outcome{Verdict: bus.Retry, Delay: time.Millisecond, Class: "http", Code: "sage_unavailable"}
		case id == 4:
			holding.Store(true)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return bus.Done()
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- bus.Consume(ctx, js, spec, telemetry.Discard(), handler) }()
	defer func() {
		cancel()
		<-done
	}()
	for id := int64(1); id <= 5; id++ {
		ev := &ledgerv1.OutboxEvent{TenantId: "mt", Event: "invoice.created", SyncRunId: fmt.Sprint("r", id), MagentoEntityId: id}
		if _, err := bus.Publish(t.Context(), js, "ledger.outbox.mt.invoice.created", ev, fmt.Sprint("mt-", id)); err != nil {
			t.Fatal(err)
		}
	}

	value := func(name string, labels map[string]string) float64 {
		v, _ := gathered(t, reg, name, labels)
		return v
	}
	st := map[string]string{"stage": stage}
	devtest.Eventually(t, "entity 4 held by its second delivery", holding.Load)
	devtest.Eventually(t, "the consumer's state while 4 is held and 5 waits", func() bool {
		return value("ledger_consumer_ack_pending_messages", st) == 1 && value("ledger_consumer_pending_messages", st) == 1 &&
			value("ledger_consumer_redelivered_messages", st) == 1 &&
			value("ledger_consumer_tenant_backlog_messages", map[string]string{"stage": stage, "tenant": "mt"}) == 2
	}, devtest.Explain(func() string {
		return fmt.Sprintf("ack pending %v, pending %v, redelivered %v, backlog %v", value("ledger_consumer_ack_pending_messages", st),
			value("ledger_consumer_pending_messages", st), value("ledger_consumer_redelivered_messages", st),
			value("ledger_consumer_tenant_backlog_messages", st))
	}))
	close(release)
	devtest.Eventually(t, "every message settled", func() bool { return settled(t, js, bus.StreamOutbox, spec.Durable) })
	devtest.Eventually(t, "the consumer's state once everything is settled", func() bool {
		return value("ledger_consumer_ack_pending_messages", st) == 0 && value("ledger_consumer_pending_messages", st) == 0 &&
			value("ledger_consumer_deliveries_total", map[string]string{"stage": stage, "outcome": "ack"}) == 4
	})

	for outcome, want := range map[string]float64{bus.SettledAck: 4, bus.SettledRetry: 2, bus.SettledDeadLetter: 1} {
		if got := value("ledger_consumer_deliveries_total", map[string]string{"stage": stage, "outcome": outcome}); got != want {
			t.Errorf("deliveries settled %s: %v, want %v", outcome, got, want)
		}
	}
	if got := value("ledger_stage_duration_seconds", st); got != 7 {
		t.Errorf("%v stage durations observed, want 7 (one per delivery)", got)
	}
	if got := value("ledger_consumer_wait_seconds", st); got != 5 {
		t.Errorf("%v waits observed, want 5 (first deliveries only)", got)
	}
	if got := value("ledger_dlq_published_total", map[string]string{"stage": stage, "class": "validation", "code": "record_invalid"}); got != 1 {
		t.Errorf("dead letters published: %v, want 1", got)
	}
	dlq, err := js.Stream(t.Context(), bus.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dlq.Info(t.Context(), jetstream.WithSubjectFilter("ledger.dlq."+stage+".>"))
	if err != nil {
		t.Fatal(err)
	}
	var inStream uint64
	for _, n := range info.State.Subjects {
		inStream += n
	}
	if got := value("ledger_dlq_messages", st); inStream != 1 || got != float64(inStream) {
		t.Errorf("ledger_dlq_messages %v, the DLQ stream holds %d of the stage", got, inStream)
	}

	// Once the loop stops, its consumer is no longer reported.
	cancel()
	<-done
	done <- nil
	if _, found := gathered(t, reg, "ledger_consumer_pending_messages", st); found {
		t.Error("a stopped loop's consumer is still reported")
	}
	if got := value("ledger_consumer_read_errors_total", nil); got != 0 {
		t.Errorf("%v failed readings", got)
	}
}

// TestNilMetrics: a spec without Metrics records nothing and fails nowhere.
func TestNilMetrics(t *testing.T) {
	var m *bus.Metrics
	m.Settled("mapper", bus.SettledAck, time.Second)
	m.Track(bus.ConsumerSpec{})()
}
