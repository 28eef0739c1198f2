package sagewriter

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// fuzzMsg is a delivered JetStream message; the handler decides, bus.Settle
// acknowledges, so an acknowledgement from the handler fails the test.
type fuzzMsg struct {
	t       *testing.T
	data    []byte
	subject string
	meta    *jetstream.MsgMetadata
}

func (m *fuzzMsg) Metadata() (*jetstream.MsgMetadata, error) { return m.meta, nil }
func (m *fuzzMsg) Data() []byte                              { return m.data }
func (m *fuzzMsg) Headers() nats.Header                      { return nats.Header{} }
func (m *fuzzMsg) Subject() string                           { return m.subject }
func (m *fuzzMsg) Reply() string                             { return "" }
func (m *fuzzMsg) Ack() error                                { return m.settled("Ack") }
func (m *fuzzMsg) DoubleAck(context.Context) error           { return m.settled("DoubleAck") }
func (m *fuzzMsg) Nak() error                                { return m.settled("Nak") }
func (m *fuzzMsg) NakWithDelay(time.Duration) error          { return m.settled("NakWithDelay") }
func (m *fuzzMsg) InProgress() error                         { return nil }
func (m *fuzzMsg) Term() error                               { return m.settled("Term") }
func (m *fuzzMsg) TermWithReason(string) error               { return m.settled("TermWithReason") }
func (m *fuzzMsg) settled(how string) error {
	m.t.Fatalf("the handler called %s itself", how)
	return nil
}

// writeStore is the store and its deliveries: the start answers as the fuzz
// input says (no such run, or a database that is down, as are its other
// calls on that path). Nothing else is reachable without a run.
type writeStore struct {
	Store
	Delivery
	down    bool
	started []string
}

func (s *writeStore) Close() {}

var errStoreDown = errors.New("connection refused")

func (s *writeStore) StartStageWithLinks(_ context.Context, id, _, _ string, _ []store.XrefKey) (store.Run, bool, map[store.XrefKey]store.Xref, error) {
	s.started = append(s.started, id)
	if s.down {
		return store.Run{}, false, nil, errStoreDown
	}
	return store.Run{}, false, nil, store.ErrNotFound
}

func (s *writeStore) NoteRunErrorWith(context.Context, string, string, string, store.Journal) error {
	return errStoreDown
}
func (s *writeStore) FinishRunWith(context.Context, store.Outcome, store.Journal) (store.Run, error) {
	return store.Run{}, errStoreDown
}

var stableCode = regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)*$`)

// FuzzSageWriteMessage feeds arbitrary SAGE messages (bytes, subject,
// delivery count) to the writer's handler. Bytes that are not a SageWrite are
// dead-lettered as undecodable, a SageWrite without tenant or run as an
// invalid write, both without touching the store and with the tenant and
// entity the subject names; a complete one starts its run: a run that does not
// exist is dead-lettered naming tenant and run, and a database failure is
// retried, never dead-lettered. Every dead letter has a class, a stable code,
// a message and a valid DLQ subject.
func FuzzSageWriteMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, subject string, delivered uint64, down bool) {
		st := &writeStore{down: down}
		s, err := New(Config{ClientID: "id", ClientSecret: "secret"}, st, struct{ jetstream.JetStream }{}, telemetry.Discard())
		if err != nil {
			t.Fatal(err)
		}
		s.open = func() Delivery { return st }
		out := s.handle(context.Background(), &fuzzMsg{t: t, data: data, subject: subject,
			meta: &jetstream.MsgMetadata{NumDelivered: delivered}})
		if out.Verdict == bus.DeadLetter {
			if out.Class == "" || !stableCode.MatchString(out.Code) || out.Message == "" {
				t.Fatalf("dead letter without class, code or message: %+v", out)
			}
			if p, err := bus.ParseSubject(bus.DLQSubject(Stage, out.TenantID, out.Entity)); err != nil || p.Stream != bus.StreamDLQ {
				t.Fatalf("outcome %+v has no valid DLQ subject: %v", out, err)
			}
		}
		tenant, entity := subjectParts(subject)
		var w ledgerv1.SageWrite
		switch {
		case proto.Unmarshal(data, &w) != nil:
			if out.Verdict != bus.DeadLetter || out.Code != CodeUndecodable || out.TenantID != tenant || out.Entity != entity || len(st.started) != 0 {
				t.Fatalf("undecodable %q on %q: %+v, started %v", data, subject, out, st.started)
			}
		case w.GetTenantId() == "" || w.GetSyncRunId() == "":
			if out.Verdict != bus.DeadLetter || out.Code != CodeInvalidWrite || out.TenantID != tenant || len(st.started) != 0 {
				t.Fatalf("write without tenant or run: %+v, started %v", out, st.started)
			}
		case len(st.started) != 1 || st.started[0] != w.GetSyncRunId():
			t.Fatalf("started %q for run %q", st.started, w.GetSyncRunId())
		case down:
			if out.Verdict != bus.Retry || out.Delay <= 0 || out.RunID != w.GetSyncRunId() {
				t.Fatalf("database down: %+v", out)
			}
		default:
			if out.Verdict != bus.DeadLetter || out.Code != CodeRunNotFound || out.TenantID != w.GetTenantId() || out.RunID != w.GetSyncRunId() {
				t.Fatalf("missing run: %+v", out)
			}
		}
	})
}

// leakCanary stands for a credential in a Sage answer.
const leakCanary = "LEAKCANARY0123"

// FuzzClassify feeds Sage error answers (status, method, path, body,
// Retry-After) to Classify as the client reports them. Every decision has a
// verdict, a class, a stable snake_case code of at most 64 characters (the
// shop's error_code column) and a message that does not repeat a credential
// from the body. 5xx and 409 are retried, never dead-lettered; 429 is
// back-pressure waiting what Retry-After says, up to an hour; a 401 pauses;
// 400, 404 and 422 dead-letter.
func FuzzClassify(f *testing.F) {
	methods := []string{http.MethodPost, http.MethodGet, http.MethodPut}
	f.Fuzz(func(t *testing.T, status uint16, method uint8, path string, body []byte, retryAfter string) {
		code := 400 + int(status)%200
		full := string(body) + " Authorization: Bearer " + leakCanary
		e := &sage.APIError{Method: methods[int(method)%len(methods)], Path: path, Status: code,
			Items: sage.ParseErrors(body), Body: full, RequestID: "req", RetryAfter: retryAfter}
		op := &OpError{TenantID: "t1", Business: "biz", Op: &ledgerv1.SageOperation{Key: "contact", Reference: "M79", XrefKey: "79"}, Err: e}
		d := Classify(op)
		switch {
		case d.Verdict != Retry && d.Verdict != Pause && d.Verdict != DeadLetter:
			t.Fatalf("HTTP %d: verdict %v", code, d.Verdict)
		case d.Class == "" || d.Message == "":
			t.Fatalf("HTTP %d: %+v", code, d)
		case !stableCode.MatchString(d.Code) || len(d.Code) > 64:
			t.Fatalf("HTTP %d %q: code %q is not a stable snake_case code", code, body, d.Code)
		case strings.Contains(d.Message, leakCanary) && !strings.Contains(string(body), "LEAKCANARY"):
			t.Fatalf("the message repeats a credential: %q", d.Message)
		case d.HTTPStatus != code:
			t.Fatalf("HTTP %d recorded as %d", code, d.HTTPStatus)
		}
		switch {
		case code == http.StatusTooManyRequests:
			if d.Verdict != Retry || !d.BackPressure || d.RetryAfter < 0 || d.RetryAfter > time.Hour {
				t.Fatalf("429: %+v", d)
			}
			if n, err := strconv.Atoi(strings.TrimSpace(retryAfter)); err == nil && n >= 0 {
				if want := min(time.Duration(min(n, 3600))*time.Second, time.Hour); d.RetryAfter != want {
					t.Fatalf("429 with Retry-After %q waits %s, want %s", retryAfter, d.RetryAfter, want)
				}
			}
		case code >= 500, code == http.StatusConflict:
			if d.Verdict != Retry {
				t.Fatalf("HTTP %d: %v", code, d.Verdict)
			}
		case code == http.StatusUnauthorized:
			if d.Verdict != Pause {
				t.Fatalf("401: %v", d.Verdict)
			}
		case code == http.StatusBadRequest, code == http.StatusNotFound && e.Method != http.MethodPut, code == http.StatusUnprocessableEntity:
			if d.Verdict != DeadLetter {
				t.Fatalf("HTTP %d: %v", code, d.Verdict)
			}
		}
	})
}
