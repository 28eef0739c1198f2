package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
)

// A body limit the NATS server cannot carry in one message stops ingest at
// start: a body at the limit would otherwise be answered 503 on every retry.
func TestBodyLimitMustFitTheStream(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(devtest.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := checkBodyFitsStream(DefaultMaxBodyBytes, nc.MaxPayload()); err != nil {
		t.Fatalf("the default limit: %v", err)
	}
	err = checkBodyFitsStream(nc.MaxPayload(), nc.MaxPayload())
	if err == nil || !strings.Contains(err.Error(), "INGEST_MAX_BODY_BYTES") || !strings.Contains(err.Error(), "max_payload") {
		t.Fatalf("a limit of max_payload: %v; want an error naming INGEST_MAX_BODY_BYTES and max_payload", err)
	}
}

func TestTenantLimiter(t *testing.T) {
	t.Parallel()
	l := newTenantLimiter(2)
	if !l.acquire("a") || !l.acquire("a") {
		t.Fatal("the first two slots of a were refused")
	}
	if l.acquire("a") {
		t.Fatal("a third slot of a was given")
	}
	if !l.acquire("b") {
		t.Fatal("b was refused while a is full")
	}
	l.release("a")
	if !l.acquire("a") {
		t.Fatal("a released slot was not given again")
	}
	l.release("a")
	l.release("a")
	l.release("b")
	if len(l.n) != 0 {
		t.Fatalf("idle tenants are remembered: %v", l.n)
	}
}

func TestConfigReadLimits(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.ReadHeaderTimeout != 10*time.Second || c.ReadTimeout != 10*time.Second || c.TenantMaxInFlight != 8 || c.MaxBodyBytes != 512<<10 {
		t.Fatalf("defaults %+v", c)
	}
	for _, tc := range []struct{ name, value string }{
		{"INGEST_READ_TIMEOUT", "20s"},
		{"INGEST_READ_HEADER_TIMEOUT", "11s"},
		{"INGEST_READ_HEADER_TIMEOUT", "0s"},
		{"INGEST_TENANT_MAX_IN_FLIGHT", "-1"},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), tc.name) {
				t.Fatalf("want an error naming %s, got %v", tc.name, err)
			}
		})
	}
}

func TestStrictJSONChecks(t *testing.T) {
	t.Parallel()
	if !tooDeep([]byte(strings.Repeat("[", 65)), 64) || tooDeep([]byte(strings.Repeat("[", 64)), 64) {
		t.Error("tooDeep does not count 64 levels")
	}
	if tooDeep([]byte(`{"a":"`+strings.Repeat("[", 100)+`"}`), 64) {
		t.Error("tooDeep counts brackets inside strings")
	}
	for _, tc := range []struct {
		body, top, key string
		nested, found  bool
	}{
		{`{"a":1,"b":{"a":1},"c":[{"a":1},{"a":2}]}`, "", "", false, false},
		{`{"a":1,"a":2}`, "a", "a", false, true},
		{`{"a":1,"\u0061":2}`, "a", "a", false, true},
		{`{"p":[{"x":1},{"y":1,"y":2}]}`, "p", "y", true, true},
		{`{"p":{"p":1,"p":2}}`, "p", "p", true, true},
	} {
		top, key, nested, found := duplicateKey([]byte(tc.body))
		if top != tc.top || key != tc.key || nested != tc.nested || found != tc.found {
			t.Errorf("duplicateKey(%s) = %q %q %v %v", tc.body, top, key, nested, found)
		}
	}
}
