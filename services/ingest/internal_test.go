package ingest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestReplayCache(t *testing.T) {
	t.Parallel()
	c := newReplayCache(2)
	const now = int64(1_000_000)
	if ok, err := c.firstUse("t1", "a", now+90, now); !ok || err != nil {
		t.Fatalf("first use: %v %v", ok, err)
	}
	if ok, _ := c.firstUse("t1", "a", now+90, now+10); ok {
		t.Fatal("a replay was accepted")
	}
	if ok, _ := c.firstUse("t2", "a", now+90, now+10); !ok {
		t.Fatal("the same jti of another tenant was refused")
	}
	if _, err := c.firstUse("t1", "b", now+90, now+10); !errors.Is(err, errReplayCacheFull) {
		t.Fatalf("full cache: %v", err)
	}
	// Once the entries have expired they are evicted and the slots reused.
	if ok, err := c.firstUse("t1", "b", now+200, now+91); !ok || err != nil {
		t.Fatalf("after expiry: %v %v", ok, err)
	}
	if c.len() != 1 {
		t.Fatalf("len %d after eviction, want 1", c.len())
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
