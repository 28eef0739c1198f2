package process

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/telemetry"
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

func TestRunStopsComponentsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	comp := Component{Name: "worker", Run: func(ctx context.Context) error {
		<-ctx.Done()
		close(stopped)
		return nil
	}}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, telemetry.Discard(), "TEST_ADDR", Server(telemetry.Discard(), "127.0.0.1:0", http.NotFoundHandler()), time.Second, comp)
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("clean shutdown returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	select {
	case <-stopped:
	default:
		t.Fatal("component was not stopped")
	}
}

func TestRunReportsAFailingComponent(t *testing.T) {
	boom := errors.New("boom")
	err := Run(context.Background(), telemetry.Discard(), "TEST_ADDR", Server(telemetry.Discard(), "127.0.0.1:0", http.NotFoundHandler()),
		time.Second, Component{Name: "worker", Run: func(context.Context) error { return boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("want the component's error, got %v", err)
	}
	if err := Run(context.Background(), telemetry.Discard(), "TEST_ADDR", Server(telemetry.Discard(), "256.0.0.1:99999", nil), time.Second); err == nil ||
		!strings.Contains(err.Error(), "TEST_ADDR") {
		t.Fatalf("a bad address must name its setting: %v", err)
	}
}
