package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/ingest"
)

// runRelayed runs svc's INGEST consumer until the test ends.
func runRelayed(t *testing.T, svc *ingest.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := svc.RunRelayed(ctx); err != nil {
			t.Errorf("RunRelayed: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	devtest.Eventually(t, "the INGEST consumer to run", func() bool { return svc.RelayConsuming(t.Context()) == nil })
}

// relay publishes one outbox row as a relay does: the envelope byte for byte
// on ledger.ingest.<tenant>.<event>, the shop's token in Authorization, the
// row's key as Idempotency-Key and (msgID, when set) Nats-Msg-Id.
func relay(t *testing.T, js jetstream.JetStream, tenant, event, key, msgID, tok, body string) *jetstream.PubAck {
	t.Helper()
	m := nats.NewMsg(bus.IngestSubject(tenant, event))
	m.Data = []byte(body)
	if tok != "" {
		m.Header.Set("Authorization", "Bearer "+tok)
	}
	if key != "" {
		m.Header.Set("Idempotency-Key", key)
	}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := js.PublishMsg(t.Context(), m, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

// deadLetters returns the ingest stage's dead letters.
func deadLetters(t *testing.T, js jetstream.JetStream) []*ledgerv1.DeadLetter {
	t.Helper()
	s, err := js.Stream(t.Context(), bus.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*ledgerv1.DeadLetter
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			continue
		}
		dl := &ledgerv1.DeadLetter{}
		if err := proto.Unmarshal(m.Data, dl); err != nil {
			t.Fatal(err)
		}
		if dl.Stage == ingest.StageIngest {
			out = append(out, dl)
		}
	}
	return out
}

// settled reports whether the INGEST consumer has nothing pending or unacked.
func settled(t *testing.T, js jetstream.JetStream) bool {
	c, err := js.Consumer(t.Context(), bus.StreamIngest, ingest.RelayDurable)
	if err != nil {
		return false
	}
	info, err := c.Info(t.Context())
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}

func TestRelayedRowBecomesOneRunAndOneOutboxEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	runRelayed(t, f.svc)
	const key = "invoice.created:42"
	relay(t, f.js, tenantID, "invoice.created", key, tenantID+":"+key, token(t), envelope)
	devtest.Eventually(t, "one OutboxEvent", func() bool { return len(f.outbox(t)) == 1 && settled(t, f.js) })

	runs, err := f.st.ListRuns(t.Context(), store.RunFilter{TenantID: tenantID})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v, %v; want exactly one", runs, err)
	}
	msg := f.outbox(t)[0]
	evt := &ledgerv1.OutboxEvent{}
	if err := proto.Unmarshal(msg.Data, evt); err != nil {
		t.Fatal(err)
	}
	if evt.SyncRunId != runs[0].ID || evt.IdempotencyKey != key || evt.Event != "invoice.created" || evt.MagentoEntityId != 42 ||
		evt.TenantId != tenantID || string(evt.Payload) != `{"increment_id":"000000042","paid":false}` {
		t.Fatalf("OutboxEvent %v does not carry the relayed row (run %s)", evt, runs[0].ID)
	}
	if got := msg.Header.Get(nats.MsgIdHdr); got != ingest.MsgID(tenantID, key, runs[0].ID) {
		t.Fatalf("Nats-Msg-Id %q", got)
	}
	if n := len(deadLetters(t, f.js)); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
	if n := counter(t, f.svc, "ledger_ingest_relayed_total", "accepted", "202"); n != 1 {
		t.Fatalf("ledger_ingest_relayed_total{outcome=accepted} = %v", n)
	}
}

func TestRelayedDuplicateKeyIsDeduped(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	runRelayed(t, f.svc)
	const key = "customer.upserted:7"
	body := `{"magento_entity_id":7,"website_id":1,"store_id":0,"occurred_at":"2026-04-29T10:11:12Z","payload":[]}`
	// A relay's retried publish (same Nats-Msg-Id) is stored once by JetStream.
	first := relay(t, f.js, tenantID, "customer.upserted", key, tenantID+":"+key, token(t), body)
	if again := relay(t, f.js, tenantID, "customer.upserted", key, tenantID+":"+key, token(t), body); !again.Duplicate || again.Sequence != first.Sequence {
		t.Fatalf("the same Nats-Msg-Id was stored twice: %+v, %+v", first, again)
	}
	// Past JetStream's window (no Nats-Msg-Id here), ingest's dedupe on the
	// key: the second message is accepted as a duplicate of the live run.
	relay(t, f.js, tenantID, "customer.upserted", key, "", token(t), body)
	// Handled one after the other, the second is a duplicate; handled at
	// once, both may publish the same run (its Nats-Msg-Id is stored once).
	devtest.Eventually(t, "both messages accepted", func() bool {
		return settled(t, f.js) && counter(t, f.svc, "ledger_ingest_relayed_total", "duplicate", "202")+
			counter(t, f.svc, "ledger_ingest_relayed_total", "accepted", "202") == 2
	})
	runs, err := f.st.ListRuns(t.Context(), store.RunFilter{TenantID: tenantID})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v, %v; want exactly one", runs, err)
	}
	if n := len(f.outbox(t)); n != 1 {
		t.Fatalf("%d OutboxEvents, want 1", n)
	}
}

func TestRelayedRowsThatCanNeverSucceedAreDeadLettered(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	if _, err := f.st.CreateTenant(t.Context(), "t2", "Shop Two"); err != nil {
		t.Fatal(err)
	}
	if err := f.st.SetMagentoPaired(t.Context(), "t2", "https://two.example", "byte8_lk_other_key_t2"); err != nil {
		t.Fatal(err)
	}
	runRelayed(t, f.svc)
	wrongKey, _ := magento.MintOutbound("byte8_lk_not_the_key", tenantID, time.Now())
	t2AsT1, _ := magento.MintOutbound("byte8_lk_other_key_t2", tenantID, time.Now())
	cases := []struct {
		name, tenant, key, tok, body, code, reason string
	}{
		{"bad token", tenantID, "invoice.created:1", wrongKey, envelope, ingest.CodeRelayUnauthorized, "signature"},
		// t1's token on t2's subject: NATS credentials for t2 never let t1 in.
		{"wrong tenant", "t2", "invoice.created:2", token(t), envelope, ingest.CodeRelayUnauthorized, "signature"},
		{"sub not the subject's tenant", "t2", "invoice.created:6", t2AsT1, envelope, ingest.CodeRelayUnauthorized, "sub"},
		{"no token", tenantID, "invoice.created:3", "", envelope, ingest.CodeRelayUnauthorized, "Authorization"},
		{"bad envelope", tenantID, "invoice.created:4", token(t), `{"magento_entity_id":"42"}`, ingest.CodeRelayMessageInvalid, "magento_entity_id"},
		{"not JSON", tenantID, "invoice.created:5", token(t), `not json`, ingest.CodeRelayMessageInvalid, "JSON object"},
		{"no key", tenantID, "", token(t), envelope, ingest.CodeRelayMessageInvalid, "Idempotency-Key"},
		// A bare key as Nats-Msg-Id would collide with other shops' rows.
		{"unscoped message id", tenantID, "invoice.created:7", token(t), envelope, ingest.CodeRelayMessageInvalid, "is not " + tenantID + ":<idempotency_key>"},
	}
	for _, c := range cases {
		msgID := c.tenant + ":" + c.key
		switch {
		case c.key == "":
			msgID = ""
		case c.name == "unscoped message id":
			msgID = c.key
		}
		relay(t, f.js, c.tenant, "invoice.created", c.key, msgID, c.tok, c.body)
	}
	devtest.Eventually(t, "every refused row dead-lettered", func() bool { return len(deadLetters(t, f.js)) == len(cases) && settled(t, f.js) },
		devtest.Explain(func() string { return fmt.Sprint(len(deadLetters(t, f.js)), " dead letters") }))
	// The handlers run concurrently: match each case to its dead letter.
	dls := deadLetters(t, f.js)
	for _, c := range cases {
		i := slices.IndexFunc(dls, func(dl *ledgerv1.DeadLetter) bool {
			return dl.ErrorCode == c.code && strings.Contains(dl.Message, c.reason) && dl.OriginalSubject == bus.IngestSubject(c.tenant, "invoice.created") &&
				string(dl.Original) == c.body && dl.TenantId == c.tenant && dl.Stage == ingest.StageIngest
		})
		if i < 0 {
			t.Errorf("%s: no dead letter with code %s naming %q among %v", c.name, c.code, c.reason, dls)
			continue
		}
		dls = slices.Delete(dls, i, i+1)
	}
	if runs, err := f.st.ListRuns(t.Context(), store.RunFilter{}); err != nil || len(runs) != 0 {
		t.Fatalf("runs %v, %v; want none", runs, err)
	}
	if n := len(f.outbox(t)); n != 0 {
		t.Fatalf("%d OutboxEvents, want none", n)
	}
	if n := counter(t, f.svc, "ledger_ingest_relayed_total", "unauthorized", "401"); n != 4 {
		t.Fatalf("ledger_ingest_relayed_total{outcome=unauthorized} = %v, want 4", n)
	}
}

// downStore is the store with the database away while down is set: every
// call fails as a lost connection does.
type downStore struct {
	ingest.Store
	down  atomic.Bool
	calls atomic.Int64
}

var errDown = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func (s *downStore) Tenant(ctx context.Context, id string) (store.Tenant, error) {
	if s.down.Load() {
		s.calls.Add(1)
		return store.Tenant{}, errDown
	}
	return s.Store.Tenant(ctx, id)
}

func (s *downStore) AcceptWebhook(ctx context.Context, d store.Delivery, w time.Duration) (store.Acceptance, error) {
	if s.down.Load() {
		s.calls.Add(1)
		return store.Acceptance{}, errDown
	}
	return s.Store.AcceptWebhook(ctx, d, w)
}

func TestRelayedRowsWaitForTheDatabase(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	st := &downStore{Store: f.st}
	st.down.Store(true)
	svc, err := ingest.New(ingest.Config{}, st, f.js, telemetry.Discard())
	if err != nil {
		t.Fatal(err)
	}
	runRelayed(t, svc)
	keys := []string{"invoice.created:1", "invoice.created:2", "invoice.created:3"}
	for _, k := range keys {
		relay(t, f.js, tenantID, "invoice.created", k, tenantID+":"+k, token(t), envelope)
	}
	// Each row is tried, refused transiently and redelivered after a back-off.
	devtest.Eventually(t, "every row tried twice", func() bool { return st.calls.Load() >= 2*int64(len(keys)) })
	if n := len(deadLetters(t, f.js)); n != 0 {
		t.Fatalf("%d dead letters while the database was away", n)
	}
	if n := counter(t, svc, "ledger_ingest_relayed_total", "unavailable", "503"); n < float64(len(keys)) {
		t.Fatalf("ledger_ingest_relayed_total{outcome=unavailable} = %v", n)
	}
	// Back, well past the tokens' 60 s lifetime as far as a webhook goes: the
	// tokens are checked as of the time INGEST stored the rows.
	st.down.Store(false)
	devtest.Eventually(t, "every row accepted once the database is back", func() bool { return len(f.outbox(t)) == len(keys) && settled(t, f.js) },
		devtest.Within(30*time.Second))
	runs, err := f.st.ListRuns(t.Context(), store.RunFilter{TenantID: tenantID})
	if err != nil || len(runs) != len(keys) {
		t.Fatalf("runs %v, %v; want %d", runs, err, len(keys))
	}
	if n := len(deadLetters(t, f.js)); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}

// counter is the value of the counter name{outcome,code} on svc's /metrics.
func counter(t *testing.T, svc *ingest.Service, name, outcome, code string) float64 {
	t.Helper()
	mfs, err := svc.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["outcome"] == outcome && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
