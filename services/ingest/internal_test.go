package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
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
	if ok, err := a.firstUse(t.Context(), "t1", "jti-1"); !ok || err != nil {
		t.Fatalf("first use: %v %v", ok, err)
	}
	if ok, err := b.firstUse(t.Context(), "t1", "jti-1"); ok || err != nil {
		t.Fatalf("the other replica accepted a replay: %v %v", ok, err)
	}
	if ok, err := b.firstUse(t.Context(), "t2", "jti-1"); !ok || err != nil {
		t.Fatalf("the same jti of another tenant was refused: %v %v", ok, err)
	}
	if n := a.entries(); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
	var full error
	for i := range 20 {
		if _, err := a.firstUse(t.Context(), "t1", fmt.Sprint("more-", i)); err != nil {
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
	if c.Addr != "127.0.0.1:8080" || c.DedupWindow != 168*time.Hour || c.MaxBodyBytes != 1<<20 || c.Validate() != nil {
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
	})
}
