package mapper

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/env"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// fuzzMsg is a delivered JetStream message; the handler decides, bus.Settle
// acknowledges, so any acknowledgement from the handler fails the test.
type fuzzMsg struct {
	t       *testing.T
	data    []byte
	subject string
	header  nats.Header
	meta    *jetstream.MsgMetadata
}

func (m *fuzzMsg) Metadata() (*jetstream.MsgMetadata, error) {
	if m.meta == nil {
		return nil, errors.New("no metadata")
	}
	return m.meta, nil
}
func (m *fuzzMsg) Data() []byte                     { return m.data }
func (m *fuzzMsg) Headers() nats.Header             { return m.header }
func (m *fuzzMsg) Subject() string                  { return m.subject }
func (m *fuzzMsg) Reply() string                    { return "" }
func (m *fuzzMsg) Ack() error                       { return m.settled("Ack") }
func (m *fuzzMsg) DoubleAck(context.Context) error  { return m.settled("DoubleAck") }
func (m *fuzzMsg) Nak() error                       { return m.settled("Nak") }
func (m *fuzzMsg) NakWithDelay(time.Duration) error { return m.settled("NakWithDelay") }
func (m *fuzzMsg) InProgress() error                { return nil }
func (m *fuzzMsg) Term() error                      { return m.settled("Term") }
func (m *fuzzMsg) TermWithReason(string) error      { return m.settled("TermWithReason") }
func (m *fuzzMsg) settled(how string) error {
	m.t.Fatalf("the handler called %s itself", how)
	return nil
}

// outboxStore answers StartRunFrom as the fuzz input says: no such run, a
// finished run, or a database failure; NoteRunError and FinishRun fail as a
// database that is down would, and it knows no tenant (so mapping stops
// before it fetches anything, and the run is started to settle the message).
type outboxStore struct {
	Store
	mode    uint8
	started []string
}

const (
	runMissing = iota
	runFinished
	runStoreDown
	runModes
)

var errStoreDown = errors.New("connection refused")

func (s *outboxStore) StartRunFrom(_ context.Context, id string, _ uint64) (store.Run, error) {
	s.started = append(s.started, id)
	switch s.mode % runModes {
	case runFinished:
		return store.Run{ID: id, Status: store.RunSucceeded}, nil
	case runStoreDown:
		return store.Run{}, errStoreDown
	}
	return store.Run{}, store.ErrNotFound
}

func (s *outboxStore) TenantWithVersions(context.Context, string) (store.Tenant, store.DataVersions, error) {
	return store.Tenant{}, store.DataVersions{}, store.ErrNotFound
}

func (s *outboxStore) NoteRunError(context.Context, string, string, string) error {
	return errStoreDown
}
func (s *outboxStore) FinishRun(context.Context, store.Outcome) (store.Run, error) {
	return store.Run{}, errStoreDown
}

// FuzzOutboxMessage feeds arbitrary OUTBOX messages (bytes, subject,
// delivery count) to the mapper's Handle, as the consumer delivers them. A
// message that is not an OutboxEvent naming a tenant and a run is dead-lettered
// as outbox_event_invalid without touching the store; one that is starts its
// run, and then: a run that does not exist is dead-lettered (run_not_found)
// naming tenant and run, a finished run is acknowledged, and a database
// failure is retried with a delay, never dead-lettered. Every dead letter's
// subject is a valid DLQ subject.
func FuzzOutboxMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, subject string, delivered uint64, mode uint8) {
		st := &outboxStore{mode: mode}
		s, err := New(Config{}, st, struct{ jetstream.JetStream }{}, telemetry.Discard())
		if err != nil {
			t.Fatal(err)
		}
		msg := &fuzzMsg{t: t, data: data, subject: subject, header: nats.Header{},
			meta: &jetstream.MsgMetadata{NumDelivered: delivered, Sequence: jetstream.SequencePair{Stream: 7}}}
		out := s.Handle(context.Background(), msg)

		var ev ledgerv1.OutboxEvent
		valid := proto.Unmarshal(data, &ev) == nil && ev.GetTenantId() != "" && ev.GetSyncRunId() != ""
		if out.Verdict == bus.DeadLetter {
			if out.Class == "" || !stableCode.MatchString(out.Code) || out.Message == "" {
				t.Fatalf("dead letter without class, code or message: %+v", out)
			}
			dlq := bus.DLQSubject(Stage, out.TenantID, out.Entity)
			if p, err := bus.ParseSubject(dlq); err != nil || p.Stream != bus.StreamDLQ {
				t.Fatalf("outcome %+v dead-letters to %q (%v)", out, dlq, err)
			}
		}
		if !valid {
			if out.Verdict != bus.DeadLetter || out.Code != CodeOutboxEventInvalid || len(st.started) != 0 {
				t.Fatalf("invalid message %q: %+v, started %v", data, out, st.started)
			}
			return
		}
		if len(st.started) != 1 || st.started[0] != ev.GetSyncRunId() {
			t.Fatalf("started %q for run %q", st.started, ev.GetSyncRunId())
		}
		switch st.mode % runModes {
		case runMissing:
			if out.Verdict != bus.DeadLetter || out.Code != CodeRunNotFound || out.TenantID != ev.GetTenantId() || out.RunID != ev.GetSyncRunId() {
				t.Fatalf("missing run: %+v", out)
			}
		case runFinished:
			if out.Verdict != bus.Ack {
				t.Fatalf("finished run: %+v", out)
			}
		case runStoreDown:
			if out.Verdict != bus.Retry || out.Delay <= 0 || out.Class != ClassDatabase || out.RunID != ev.GetSyncRunId() {
				t.Fatalf("database down: %+v", out)
			}
		}
	})
}

// FuzzConfigFromEnv reads MAPPER_* settings from arbitrary values: a
// configuration it accepts is valid and starts a service; one it refuses
// names the variable.
func FuzzConfigFromEnv(f *testing.F) {
	f.Fuzz(func(t *testing.T, addr, workers, timeout, currency string) {
		vars := map[string]string{"MAPPER_ADDR": addr, "MAPPER_WORKERS": workers, "MAPPER_HTTP_TIMEOUT": timeout, "MAPPER_BASE_CURRENCY": currency}
		c, err := configFrom(&env.Reader{Lookup: func(name string) (string, bool) { v, ok := vars[name]; return v, ok }})
		if err != nil {
			if !strings.Contains(err.Error(), "MAPPER_") {
				t.Fatalf("error %v names no variable", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted %+v, which Validate refuses: %v", c, err)
		}
		if _, err := New(c, &outboxStore{}, struct{ jetstream.JetStream }{}, telemetry.Discard()); err != nil {
			t.Fatalf("accepted %+v, which New refuses: %v", c, err)
		}
	})
}
