package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
)

// TestReplayGuardIsSharedAcrossReplicas: two replicas (two guards on one
// NATS) accept a token once between them; another tenant's equal jti is its
// own; a full set refuses with errReplayCacheFull instead of forgetting.
func TestReplayGuardIsSharedAcrossReplicas(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(devtest.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	a, err := openReplayGuard(t.Context(), js, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	b, err := openReplayGuard(t.Context(), js, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := a.firstUse(t.Context(), "t1", "jti-1", ""); !ok || err != nil {
		t.Fatalf("first use: %v %v", ok, err)
	}
	if ok, err := b.firstUse(t.Context(), "t1", "jti-1", ""); ok || err != nil {
		t.Fatalf("the other replica accepted a replay: %v %v", ok, err)
	}
	if ok, err := b.firstUse(t.Context(), "t2", "jti-1", ""); !ok || err != nil {
		t.Fatalf("the same jti of another tenant was refused: %v %v", ok, err)
	}
	if n := a.entries(); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
	var full error
	for i := range 20 {
		if _, err := a.firstUse(t.Context(), "t1", fmt.Sprint("more-", i), ""); err != nil {
			full = err
			break
		}
	}
	if !errors.Is(full, errReplayCacheFull) {
		t.Fatalf("a full set answered %v, want errReplayCacheFull", full)
	}
}

func TestConfig(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.Addr != "127.0.0.1:8080" || c.DedupWindow != 168*time.Hour || c.MaxBodyBytes != 512<<10 || c.Validate() != nil {
		t.Fatalf("defaults %+v: %v", c, c.Validate())
	}
	t.Setenv("INGEST_DEDUP_WINDOW", "soon")
	t.Setenv("INGEST_REQUEST_TIMEOUT", "30s")
	_, err := ConfigFromEnv()
	if err == nil || !strings.Contains(err.Error(), "INGEST_DEDUP_WINDOW") {
		t.Fatalf("want an error naming INGEST_DEDUP_WINDOW, got %v", err)
	}
	t.Setenv("INGEST_DEDUP_WINDOW", "24h")
	if _, err = ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "INGEST_REQUEST_TIMEOUT") {
		t.Fatalf("want an error naming INGEST_REQUEST_TIMEOUT, got %v", err)
	}
}

func FuzzWebhookEnvelope(f *testing.F) {
	for _, seed := range []string{
		`{"magento_entity_id":42,"website_id":1,"store_id":1,"occurred_at":"2026-04-29T10:11:12Z","payload":{"increment_id":"000000042","paid":false}}`,
		`{"magento_entity_id":7,"payload":[]}`,
		`{"magento_entity_id":0}`,
		`{"magento_entity_id":-1}`,
		`{"magento_entity_id":1e3}`,
		`{"magento_entity_id":"42"}`,
		`{"magento_entity_id":9223372036854775808}`,
		`{"magento_entity_id":1,"website_id":null,"payload":null,"x":{}}`,
		`[]`, `null`, `"x"`, ``, `{`, `{"magento_entity_id":1}{}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := DecodeEnvelope(body)
		if err != nil {
			var ee *EnvelopeError
			if !errors.As(err, &ee) || ee.Message == "" {
				t.Fatalf("error %v is not an *EnvelopeError with a message", err)
			}
			return
		}
		if env.MagentoEntityID < 0 {
			t.Fatalf("accepted a negative id: %d", env.MagentoEntityID)
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(body, &obj) != nil || obj == nil {
			t.Fatalf("accepted a body that is not a JSON object: %q", body)
		}
		if env.Payload != nil && !json.Valid(env.Payload) {
			t.Fatalf("payload %q is not valid JSON", env.Payload)
		}
		// What is accepted can be stored (a refusal by the database would
		// be answered 503 and retried for days) ...
		if err := postgresRefuses(delivery("t1", "invoice.created:1", "invoice.created", env)); err != nil {
			t.Fatalf("accepted %q, which PostgreSQL refuses: %v", body, err)
		}
		// ... and the envelope the shop would send for it decodes the same:
		// the fields the pipeline needs survive format→parse.
		again, err := json.Marshal(magento.Envelope{MagentoEntityID: env.MagentoEntityID, WebsiteID: env.WebsiteID,
			StoreID: env.StoreID, OccurredAt: env.OccurredAt, Payload: env.Payload})
		if err != nil {
			t.Fatalf("accepted envelope %+v does not encode: %v", env, err)
		}
		env2, err := DecodeEnvelope(again)
		if err != nil || env2.MagentoEntityID != env.MagentoEntityID || env2.WebsiteID != env.WebsiteID ||
			env2.StoreID != env.StoreID || env2.OccurredAt != env.OccurredAt || !sameJSON(env2.Payload, env.Payload) {
			t.Fatalf("%q: accepted as %+v, re-encoded as %s, decoded as %+v, %v", body, env, again, env2, err)
		}
	})
}

// sameJSON reports whether a and b are the same JSON value (nil: none).
func sameJSON(a, b json.RawMessage) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	decode := func(raw json.RawMessage) any {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return errors.New("undecodable")
		}
		return v
	}
	return reflect.DeepEqual(decode(a), decode(b))
}
