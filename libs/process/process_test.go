package process

import (
	"strings"
	"testing"
)

func TestSettingsNameEveryProblem(t *testing.T) {
	t.Setenv("LEDGER_DATABASE_URL", "")
	t.Setenv("LEDGER_SECRET_KEY", "")
	t.Setenv("LEDGER_NATS_REPLICAS", "2")
	t.Setenv("LEDGER_ENV", "staging")
	_, err := SettingsFromEnv()
	for _, want := range []string{"LEDGER_DATABASE_URL", "LEDGER_SECRET_KEY", "LEDGER_NATS_REPLICAS", "LEDGER_ENV"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error should name %s: %v", want, err)
		}
	}
	t.Setenv("LEDGER_DATABASE_URL", "postgres://x")
	t.Setenv("LEDGER_SECRET_KEY", "k1:secret")
	t.Setenv("LEDGER_NATS_REPLICAS", "3")
	t.Setenv("LEDGER_ENV", "dev")
	s, err := SettingsFromEnv()
	if err != nil || s.NATSReplicas != 3 {
		t.Fatalf("%+v %v", s, err)
	}
	if v := s.LogValue().String(); strings.Contains(v, "secret") && !strings.Contains(v, "[redacted]") {
		t.Fatalf("secret key logged: %s", v)
	}
}

func TestBadLogLevelIsRefused(t *testing.T) {
	t.Setenv("LEDGER_DATABASE_URL", "postgres://x")
	t.Setenv("LEDGER_SECRET_KEY", "k1:secret")
	t.Setenv("LEDGER_LOG_LEVEL", "verbose")
	if _, err := SettingsFromEnv(); err == nil || !strings.Contains(err.Error(), "LEDGER_LOG_LEVEL") {
		t.Fatalf("want LEDGER_LOG_LEVEL named, got %v", err)
	}
}

func TestVersionAtLeast(t *testing.T) {
	for _, c := range []struct {
		have string
		ok   bool
	}{{"2.10.0", true}, {"2.15.3", true}, {"2.9.25", false}, {"3.0.0", true}, {"2.10.0-beta.1", true}, {"", false}} {
		if got := versionAtLeast(c.have, MinNATSVersion); got != c.ok {
			t.Errorf("versionAtLeast(%q) = %v", c.have, got)
		}
	}
}
