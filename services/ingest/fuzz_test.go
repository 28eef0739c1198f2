package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// The fuzz targets of the webhook path run the real handler against an
// in-memory store and JetStream: an execution must take microseconds and
// depend on its input alone, which a database and a NATS server per
// execution cannot give. webhook_test.go covers the same path against real
// PostgreSQL and NATS; fuzzStore refuses what PostgreSQL's column types
// refuse (TestStorableAgainstPostgres checks the rules on a real server).

const (
	fuzzTenant   = "t1"
	fuzzUnpaired = "t2"
	fuzzAPIKey   = "byte8_lk_fuzz_master_secret"
	fuzzRunID    = "0b7e8c9a-3c1d-4f7e-9d1a-2b3c4d5e6f70"
)

var fuzzNow = time.Unix(1777457472, 0) // 2026-04-29T10:11:12Z

// FuzzWebhookHeaders checks what the handler decides before the envelope:
// the URL's {tenant}/{event} segments as route decodes them, the
// Idempotency-Key header and the event name. What validateWebhook accepts is
// what the pipeline can carry: a key of at most 128 characters of valid UTF-8
// without control characters (it travels in a NATS header and a text column),
// an event that is lowercase dot-separated words, whose OUTBOX subject parses
// back to exactly this tenant and event.
func FuzzWebhookHeaders(f *testing.F) {
	f.Fuzz(func(t *testing.T, rawTenant, rawEvent, key string, body []byte) {
		tenant, err1 := url.PathUnescape(rawTenant)
		event, err2 := url.PathUnescape(rawEvent)
		if err1 != nil || err2 != nil {
			return
		}
		env, err := validateWebhook(key, event, body)
		if err != nil {
			var ee *EnvelopeError
			if !errors.As(err, &ee) || ee.Message == "" {
				t.Fatalf("refusal %v is not an *EnvelopeError with a message", err)
			}
			return
		}
		switch {
		case key == "" || utf8.RuneCountInString(key) > maxKeyLen || !utf8.ValidString(key) || strings.ContainsFunc(key, unicode.IsControl):
			t.Fatalf("accepted the Idempotency-Key %q", key)
		case len(event) > maxEventLen || strings.Trim(event, "abcdefghijklmnopqrstuvwxyz0123456789_.") != "" ||
			!strings.Contains(event, ".") || strings.Contains(event, "..") || event[0] == '.' || event[len(event)-1] == '.':
			t.Fatalf("accepted the event %q", event)
		case env.MagentoEntityID < 0:
			t.Fatalf("accepted the entity id %d", env.MagentoEntityID)
		}
		if store.ValidTenantID(tenant) != nil {
			return // answered 401 before anything is published
		}
		subject := bus.OutboxSubject(tenant, event)
		s, err := bus.ParseSubject(subject)
		if err != nil || s.Stream != bus.StreamOutbox || s.Tenant != tenant || s.Entity != event {
			t.Fatalf("OutboxSubject(%q, %q) = %q parses as %+v, %v", tenant, event, subject, s, err)
		}
		if d := delivery(tenant, key, event, env); postgresRefuses(d) != nil {
			t.Fatalf("accepted a delivery PostgreSQL refuses (%v): %+v", postgresRefuses(d), d)
		}
	})
}

func delivery(tenant, key, event string, env Envelope) store.Delivery {
	return store.Delivery{TenantID: tenant, IdempotencyKey: key, Event: event, EntityType: magento.EntityType(event),
		MagentoEntityID: env.MagentoEntityID, WebsiteID: env.WebsiteID, StoreID: env.StoreID,
		OccurredAt: env.OccurredAt, Payload: env.Payload}
}

// webhookMethods are the methods the handler target sends.
var webhookMethods = []string{http.MethodPost, http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions}

// Token modes of FuzzWebhookHandler.
const (
	tokenForPath     = iota // a fresh valid token for the tenant the path names (t1 off the webhook path)
	tokenRaw                // the Authorization header exactly as fuzzed
	tokenForT1              // a valid token for t1, whatever the path says
	tokenForUnpaired        // a valid-looking token for t2, which has no key
	tokenModes
)

// FuzzWebhookHandler feeds whole requests (method, raw path, Authorization,
// Idempotency-Key, traceparent, body) to the service's handler through
// httptest. Properties: no 5xx (the store and the bus never fail here, so a
// 5xx would be a deterministic input answered as transient); every answer is
// JSON (but a 204) and every error says what is wrong; a 202 carries the run
// id and, unless it is a repeat, published exactly one OutboxEvent to the
// tenant's OUTBOX subject holding the URL's tenant and event, the header's
// key and the envelope's fields; nothing else publishes; a request with a
// valid token of the path's paired tenant gets exactly the answer its
// content calls for (202 when key, event and envelope are valid); the same
// token again is a 401 (replay).
func FuzzWebhookHandler(f *testing.F) {
	f.Fuzz(func(t *testing.T, method uint8, path string, mode uint8, authorization, key, traceparent string, body []byte) {
		u, err := url.ParseRequestURI(path)
		if err != nil || u.Host != "" || u.Scheme != "" {
			return // the server answers 400 before any handler
		}
		pathTenant := fuzzTenant
		if rest, ok := strings.CutPrefix(u.EscapedPath(), "/webhooks/magento/"); ok {
			if seg, _, ok := strings.Cut(rest, "/"); ok {
				if p, err := url.PathUnescape(seg); err == nil {
					pathTenant = p
				}
			}
		}
		switch mode % tokenModes {
		case tokenForPath:
			authorization = "Bearer " + fuzzToken(t, pathTenant)
		case tokenForT1:
			authorization = "Bearer " + fuzzToken(t, fuzzTenant)
		case tokenForUnpaired:
			authorization = "Bearer " + fuzzToken(t, fuzzUnpaired)
		}
		svc, st, js := newFuzzService(t)
		req := &http.Request{Method: webhookMethods[int(method)%len(webhookMethods)], URL: u, RequestURI: path,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: "ingest.test",
			Header: http.Header{"Authorization": {authorization}, "Content-Type": {"application/json"}},
			Body:   io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		req = req.WithContext(context.Background())
		rec := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rec, req)

		code := rec.Code
		if code >= 500 {
			t.Fatalf("%s %s: %d %s", req.Method, path, code, rec.Body)
		}
		var answer map[string]any
		if code != http.StatusNoContent && req.Method != http.MethodHead {
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "text/plain") {
				t.Fatalf("%s %s: %d with Content-Type %q", req.Method, path, code, ct)
			}
			if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && json.Unmarshal(rec.Body.Bytes(), &answer) != nil {
				t.Fatalf("%s %s: %d body %q is not a JSON object", req.Method, path, code, rec.Body)
			}
		}
		if code >= 400 && answer != nil && (answer["error"] == "" || answer["message"] == "") {
			t.Fatalf("%s %s: %d without error and message: %s", req.Method, path, code, rec.Body)
		}

		isWebhook := strings.HasPrefix(u.EscapedPath(), "/webhooks/magento/") && strings.Count(u.EscapedPath(), "/") == 4 &&
			req.Method == http.MethodPost
		if isWebhook && mode%tokenModes == tokenForPath && pathTenant == fuzzTenant {
			// A valid token of the paired tenant: the request's own content
			// decides, and a valid request is accepted.
			segs := strings.Split(u.EscapedPath(), "/")
			event, err := url.PathUnescape(segs[4])
			want := http.StatusAccepted
			switch {
			case err != nil || segs[4] == "":
				want = http.StatusNotFound
			case len(body) > int(svc.Config().MaxBodyBytes):
				want = http.StatusRequestEntityTooLarge
			case validateWebhookErr(key, event, body) != nil:
				want = http.StatusBadRequest
			}
			if code != want {
				t.Fatalf("POST %s with a valid token, key %q: %d %s, want %d", path, key, code, rec.Body, want)
			}
		}
		msgs := js.published()
		if code != http.StatusAccepted || !isWebhook {
			if len(msgs) != 0 || len(st.accepted) != 0 {
				t.Fatalf("%s %s answered %d but published %d and accepted %d", req.Method, path, code, len(msgs), len(st.accepted))
			}
			return
		}
		if answer["sync_run_id"] != fuzzRunID || len(msgs) != 1 {
			t.Fatalf("202 %s with %d messages published", rec.Body, len(msgs))
		}
		checkPublished(t, msgs[0], pathTenant, key, body)

		// The same token again is a replay.
		again := req.Clone(context.Background())
		again.Body = io.NopCloser(bytes.NewReader(body))
		rec2 := httptest.NewRecorder()
		svc.Handler().ServeHTTP(rec2, again)
		if rec2.Code != http.StatusUnauthorized || !strings.Contains(rec2.Body.String(), "replayed") {
			t.Fatalf("a replayed token got %d %s", rec2.Code, rec2.Body)
		}
	})
}

func validateWebhookErr(key, event string, body []byte) error {
	_, err := validateWebhook(key, event, body)
	return err
}

// checkPublished checks the one message a 202 published.
func checkPublished(t *testing.T, m *nats.Msg, tenant, key string, body []byte) {
	t.Helper()
	s, err := bus.ParseSubject(m.Subject)
	if err != nil || s.Stream != bus.StreamOutbox || s.Tenant != tenant {
		t.Fatalf("published to %q (%+v, %v), not tenant %s's OUTBOX", m.Subject, s, err, tenant)
	}
	var evt ledgerv1.OutboxEvent
	if err := proto.Unmarshal(m.Data, &evt); err != nil {
		t.Fatalf("published data is not an OutboxEvent: %v", err)
	}
	env, err := DecodeEnvelope(body)
	if err != nil {
		t.Fatalf("published an event for a refused envelope %q: %v", body, err)
	}
	if evt.GetTenantId() != tenant || evt.GetEvent() != s.Entity || evt.GetIdempotencyKey() != key ||
		evt.GetSyncRunId() != fuzzRunID || evt.GetMagentoEntityId() != env.MagentoEntityID ||
		evt.GetWebsiteId() != env.WebsiteID || evt.GetStoreId() != env.StoreID || evt.GetOccurredAt() != env.OccurredAt ||
		!bytes.Equal(evt.GetPayload(), env.Payload) || !evt.GetReceivedAt().AsTime().Equal(fuzzNow) {
		t.Fatalf("published %v for tenant %s, key %q, envelope %+v", &evt, tenant, key, env)
	}
	if got := m.Header.Get(bus.HeaderType); got != "ledger.v1.OutboxEvent" {
		t.Fatalf("%s header %q", bus.HeaderType, got)
	}
}

// fuzzToken mints what the shop's Signer mints at fuzzNow.
func fuzzToken(t *testing.T, tenant string) string {
	tok, err := magento.MintOutbound(fuzzAPIKey, tenant, fuzzNow)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newFuzzService(t *testing.T) (*Service, *fuzzStore, *fuzzJetStream) {
	t.Helper()
	st, js := &fuzzStore{accepted: map[string]string{}}, &fuzzJetStream{}
	svc, err := New(Config{MaxBodyBytes: 4096, RequestTimeout: time.Second}, st, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc.now = func() time.Time { return fuzzNow }
	return svc, st, js
}

// fuzzStore is the store of one execution: tenant t1 paired, t2 created but
// not paired, one run per accepted key. It refuses a delivery PostgreSQL
// would refuse, which the handler answers 503: a property violation.
type fuzzStore struct {
	mu       sync.Mutex
	accepted map[string]string // idempotency key → run id
}

func (s *fuzzStore) Tenant(_ context.Context, id string) (store.Tenant, error) {
	switch id {
	case fuzzTenant:
		return store.Tenant{ID: id, Binding: store.Binding{TenantID: id, APIKey: fuzzAPIKey, MagentoConnectionStatus: store.StatusActive, Status: "active"}}, nil
	case fuzzUnpaired:
		return store.Tenant{ID: id, Binding: store.Binding{TenantID: id}}, nil
	}
	return store.Tenant{}, store.ErrNotFound
}

func (s *fuzzStore) AcceptWebhook(_ context.Context, d store.Delivery, _ time.Duration) (store.Acceptance, error) {
	if err := postgresRefuses(d); err != nil {
		return store.Acceptance{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accepted[d.IdempotencyKey]; ok {
		return store.Acceptance{RunID: fuzzRunID, Duplicate: true}, nil
	}
	s.accepted[d.IdempotencyKey] = fuzzRunID
	return store.Acceptance{RunID: fuzzRunID}, nil
}

func (s *fuzzStore) SetMagentoStatus(context.Context, string, string) error { return nil }
func (s *fuzzStore) RunCounts(context.Context, string) (store.Counts, error) {
	return store.Counts{}, nil
}
func (s *fuzzStore) Ping(context.Context) error { return nil }
func (s *fuzzStore) LatestRun(context.Context, string, string, int64) (store.Run, error) {
	return store.Run{}, store.ErrNotFound
}
func (s *fuzzStore) ForgetWebhookKeys(context.Context, time.Duration) (int64, error) { return 0, nil }
func (s *fuzzStore) TouchShops(context.Context, map[string]time.Time) error          { return nil }
func (s *fuzzStore) RecordUnauthorized(context.Context, store.Refusal) (int, error)  { return 1, nil }
func (s *fuzzStore) ShopActivity(context.Context, string) (store.ShopActivity, error) {
	return store.ShopActivity{}, nil
}

// fuzzJetStream records publishes and keeps the replay bucket in a map. Any
// other JetStream call panics (the embedded interface is nil): the webhook
// path makes none.
type fuzzJetStream struct {
	jetstream.JetStream
	mu   sync.Mutex
	msgs []*nats.Msg
	kv   *fuzzKV
}

func (j *fuzzJetStream) PublishMsg(_ context.Context, m *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.msgs = append(j.msgs, m)
	return &jetstream.PubAck{Stream: bus.StreamOutbox, Sequence: uint64(len(j.msgs))}, nil
}

func (j *fuzzJetStream) published() []*nats.Msg {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]*nats.Msg(nil), j.msgs...)
}

// Stream is the DLQ the tile counts: none here, so the tile leaves the count
// out.
func (j *fuzzJetStream) Stream(context.Context, string) (jetstream.Stream, error) {
	return nil, jetstream.ErrStreamNotFound
}

func (j *fuzzJetStream) CreateOrUpdateKeyValue(context.Context, jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	j.kv = &fuzzKV{keys: map[string]bool{}}
	return j.kv, nil
}

type fuzzKV struct {
	jetstream.KeyValue
	mu   sync.Mutex
	keys map[string]bool
}

func (kv *fuzzKV) Create(_ context.Context, key string, _ []byte, _ ...jetstream.KVCreateOpt) (uint64, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.keys[key] {
		return 0, jetstream.ErrKeyExists
	}
	kv.keys[key] = true
	return uint64(len(kv.keys)), nil
}

func (kv *fuzzKV) Status(context.Context) (jetstream.KeyValueStatus, error) {
	return nil, errors.New("fuzzKV: no status")
}

// Bounds of PostgreSQL's numeric type, which jsonb numbers use.
const (
	pgNumericMaxIntDigits = 131072
	pgNumericMaxScale     = 16383
)

// postgresRefuses says why PostgreSQL would refuse to store d: a NUL or
// invalid UTF-8 in a text column; in the jsonb payload invalid UTF-8, a
// string holding U+0000, or a number outside numeric's range. It is written
// independently of storable (decoded strings and exact number arithmetic
// rather than a scan of the text) and never refuses what the server stores;
// it leaves out the unpaired surrogate escapes the server also refuses.
func postgresRefuses(d store.Delivery) error {
	for _, s := range []string{d.TenantID, d.IdempotencyKey, d.Event, d.EntityType, d.OccurredAt} {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return fmt.Errorf("text %q: invalid byte sequence for encoding UTF8", s)
		}
	}
	if d.Payload == nil {
		return nil
	}
	if !utf8.Valid(d.Payload) || !json.Valid(d.Payload) {
		return errors.New("jsonb: invalid input syntax")
	}
	dec := json.NewDecoder(bytes.NewReader(d.Payload))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("jsonb: %v", err)
		}
		switch v := tok.(type) {
		case string:
			if strings.ContainsRune(v, 0) {
				return errors.New("jsonb: unsupported Unicode escape sequence \\u0000")
			}
		case json.Number:
			if !numericFits(v.String()) {
				return fmt.Errorf("jsonb: value overflows numeric format: %.40s", v)
			}
		}
	}
}

// numericFits reports whether a JSON number is within numeric's digits
// before the point and scale.
func numericFits(n string) bool {
	mant, exp, _ := strings.Cut(strings.ToLower(n), "e")
	e := new(big.Int)
	if exp != "" {
		if _, ok := e.SetString(strings.TrimPrefix(exp, "+"), 10); !ok {
			return false
		}
	}
	intPart, frac, _ := strings.Cut(strings.TrimPrefix(mant, "-"), ".")
	if strings.Trim(intPart+frac, "0") == "" {
		return true // zero
	}
	intDigits := new(big.Int).Add(big.NewInt(int64(len(strings.TrimLeft(intPart, "0")))), e)
	scale := new(big.Int).Sub(big.NewInt(int64(len(frac))), e)
	return intDigits.Cmp(big.NewInt(pgNumericMaxIntDigits)) <= 0 && scale.Cmp(big.NewInt(pgNumericMaxScale)) <= 0
}
