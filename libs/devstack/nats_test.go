package devstack_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/devstack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
)

func TestStartNATSJetStreamRoundTrip(t *testing.T) {
	t.Parallel()
	s, err := devstack.StartNATS("")
	if err != nil {
		t.Fatal(err)
	}
	storeDir := s.StoreDir()
	if storeDir == "" {
		t.Fatal("JetStream is not enabled")
	}

	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "orders.created", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Stream != "ORDERS" || ack.Sequence != 1 {
		t.Fatalf("ack = %+v, want stream ORDERS sequence 1", ack)
	}
	msg, err := js.Stream(ctx, "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	got, err := msg.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data) != "hello" {
		t.Fatalf("stored %q, want hello", got.Data)
	}
	nc.Close()

	s.Shutdown()
	s.WaitForShutdown()
	// StartNATS made the directory, so it removes it after shutdown.
	devtest.Eventually(t, "the store directory "+storeDir+" to be removed after shutdown", func() bool {
		_, err := os.Stat(storeDir)
		return os.IsNotExist(err)
	})
}

func TestStartNATSKeepsCallersDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := devstack.StartNATS(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	s.WaitForShutdown()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("caller's directory removed: %v", err)
	}
}

func TestNATSURLHonoursEnv(t *testing.T) {
	t.Setenv(devstack.EnvNATSURL, "nats://nats.example:4222")
	u, stop, err := devstack.NATSURL(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if u != "nats://nats.example:4222" {
		t.Fatalf("url = %q", u)
	}
}

func TestNATSURLEmbedded(t *testing.T) {
	t.Setenv(devstack.EnvNATSURL, "")
	u, stop, err := devstack.NATSURL(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	nc, err := nats.Connect(u)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestSyncAlways: WithSyncAlways (what NATSURL starts the development server
// with) fsyncs every write, as deploy/nats/nats.conf has production do.
func TestSyncAlways(t *testing.T) {
	s, err := devstack.StartNATS(t.TempDir(), devstack.WithSyncAlways())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	if cfg := s.JetStreamConfig(); cfg == nil || !cfg.SyncAlways {
		t.Fatalf("JetStream config %+v: want SyncAlways", cfg)
	}
}

// TestStopNATSLeavesNoStore: a client that asks for streams and key-value
// buckets and goes away without waiting for the answers (a service stopped
// while starting) leaves requests in the server's API queue. StopNATS lets
// them finish before the shutdown, so no store outlives the server (TestMain
// fails the run on a leaked goroutine); a bare Shutdown leaked a file store's
// goroutines now and then (CI, sage-writer, 2026-12).
func TestStopNATSLeavesNoStore(t *testing.T) {
	for round := range 30 {
		s, err := devstack.StartNATS(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		inbox := nats.NewInbox()
		for i := range 20 {
			cfg := fmt.Sprintf(`{"name":"S%d","subjects":["s%d.>"],"storage":"file"}`, i, i)
			if err := nc.PublishRequest(fmt.Sprintf("$JS.API.STREAM.CREATE.S%d", i), inbox, []byte(cfg)); err != nil {
				t.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		nc.Close()
		devstack.StopNATS(s, 5*time.Second)
	}
}
