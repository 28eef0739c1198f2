package statecallback

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// fuzzMsg is a delivered RESULTS message; prepare only reads it.
type fuzzMsg struct {
	t       *testing.T
	data    []byte
	subject string
	meta    *jetstream.MsgMetadata
}

func (m *fuzzMsg) Metadata() (*jetstream.MsgMetadata, error) {
	if m.meta == nil {
		return nil, errors.New("no metadata")
	}
	return m.meta, nil
}
func (m *fuzzMsg) Data() []byte                     { return m.data }
func (m *fuzzMsg) Headers() nats.Header             { return nats.Header{} }
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
	m.t.Fatalf("prepare called %s", how)
	return nil
}

// The range of the MySQL timestamp column last_sync_at is stored in; a value
// outside it makes Magento's upsert fail with "Could not upsert", which is
// retried as a database failure and can never succeed.
var (
	mysqlTimestampMin = time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC)
	mysqlTimestampMax = time.Date(2038, 1, 19, 3, 14, 7, 0, time.UTC)
)

var stableCode = regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)*$`)

// FuzzResultMessage feeds arbitrary RESULTS messages (bytes, subject,
// metadata) to prepare, which decodes and validates a SyncResult before any
// shop is called. A message is either settled at once (dead-lettered with a
// class, stable code and message and a valid DLQ subject, or acknowledged when
// Magento keeps no state for it), or becomes a delivery whose sync state is
// one Magento's endpoint accepts: a mirrored entity type, a positive id, the
// provider, a terminal status with only its own optional column set, each
// optional column at most 64 characters of valid UTF-8, a last_sync_at the
// shop's timestamp column can hold, and a run uuid for the callback mark.
func FuzzResultMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, subject string, hasMeta bool, published int64) {
		s := fuzzService(t)
		msg := &fuzzMsg{t: t, data: data, subject: subject}
		if hasMeta {
			msg.meta = &jetstream.MsgMetadata{NumDelivered: 1, Timestamp: time.Unix(0, published), Sequence: jetstream.SequencePair{Stream: 3}}
		}
		d, out := s.prepare(context.Background(), msg)
		if d == nil {
			switch out.Verdict {
			case bus.Ack:
			case bus.DeadLetter:
				if out.Class == "" || !stableCode.MatchString(out.Code) || out.Message == "" {
					t.Fatalf("dead letter without class, code or message: %+v", out)
				}
				if p, err := bus.ParseSubject(bus.DLQSubject(Stage, out.TenantID, out.Entity)); err != nil || p.Stream != bus.StreamDLQ {
					t.Fatalf("outcome %+v has no valid DLQ subject: %v", out, err)
				}
			default:
				t.Fatalf("settled at once with %+v", out)
			}
			return
		}
		var res ledgerv1.SyncResult
		if err := proto.Unmarshal(data, &res); err != nil {
			t.Fatalf("a delivery from undecodable bytes %q", data)
		}
		st := d.state
		if !slices.Contains(MirroredEntityTypes, st.EntityType) || st.MagentoEntityID <= 0 || st.Provider != magento.ProviderSage {
			t.Fatalf("state %+v", st)
		}
		if _, err := uuid.Parse(res.GetSyncRunId()); err != nil {
			t.Fatalf("delivery for run %q", res.GetSyncRunId())
		}
		set := map[string]*string{"provider_entity_id": st.ProviderEntityID, "skip_reason": st.SkipReason, "error_code": st.ErrorCode}
		own := map[string]string{"synced": "provider_entity_id", "skipped": "skip_reason", "failed": "error_code"}[st.SyncStatus]
		if own == "" || st.ProviderReference != nil {
			t.Fatalf("state %+v", st)
		}
		for name, v := range set {
			// A synced row's skip_reason says what the run did (syncedDetail).
			detail := v != nil && st.SyncStatus == "synced" && name == "skip_reason" && (*v == "updated" || *v == "unchanged")
			if v != nil && !detail && (name != own || *v == "" || utf8.RuneCountInString(*v) > 64 || !utf8.ValidString(*v)) {
				t.Fatalf("%s %q on a %s state", name, *v, st.SyncStatus)
			}
		}
		at, err := time.Parse(magento.MySQLTimestamp, st.LastSyncAt)
		if err != nil || at.Before(mysqlTimestampMin) || at.After(mysqlTimestampMax) {
			t.Fatalf("last_sync_at %q is outside the shop's timestamp column (%v)", st.LastSyncAt, err)
		}
	})
}

// fuzzService is a service whose store and bus are never reached by prepare.
func fuzzService(t *testing.T) *Service {
	t.Helper()
	s, err := New(Config{}, struct{ Store }{}, struct{ jetstream.JetStream }{}, telemetry.Discard())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
