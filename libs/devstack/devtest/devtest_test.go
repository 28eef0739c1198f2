package devtest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
)

func TestMain(m *testing.M) { devtest.Main(m) }

func TestDatabaseIsFreshAndMigrated(t *testing.T) {
	t.Parallel()
	first, second := devtest.Database(t), devtest.Database(t)
	if first == second {
		t.Fatalf("both calls returned %s", first)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	names := map[string]bool{}
	for _, u := range []string{first, second} {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		var name string
		var tenants *string
		if err := conn.QueryRow(ctx, "SELECT current_database(), to_regclass('tenants')::text").Scan(&name, &tenants); err != nil {
			t.Fatal(err)
		}
		if tenants == nil {
			t.Errorf("database %s has no tenants table", name)
		}
		names[name] = true
		// Writes to one database must not show in the other.
		if _, err := conn.Exec(ctx, "CREATE TABLE only_in_"+name+" ()"); err != nil {
			t.Fatal(err)
		}
		var others int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'only_in_%'").Scan(&others); err != nil {
			t.Fatal(err)
		}
		if others != 1 {
			t.Errorf("database %s sees %d only_in_ tables, want 1", name, others)
		}
		if err := conn.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(names) != 2 {
		t.Fatalf("connected to %v, want two databases", names)
	}
}

func TestDatabaseParallel(t *testing.T) {
	t.Parallel()
	for i := range 4 {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			conn, err := pgx.Connect(ctx, devtest.Database(t))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.WithoutCancel(ctx))
			if err := conn.Ping(ctx); err != nil {
				t.Fatalf("database %d: %v", i, err)
			}
		})
	}
}

func TestNATS(t *testing.T) {
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
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "events.x", []byte("x")); err != nil {
		t.Fatal(err)
	}
}

func TestRestartNATSKeepsStreams(t *testing.T) {
	t.Parallel()
	s := devtest.NATSServer(t)
	url := s.ClientURL()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "events.before", []byte("before")); err != nil {
		t.Fatal(err)
	}

	s2 := devtest.RestartNATS(t, s)
	if s2.ClientURL() != url {
		t.Fatalf("restarted at %s, want %s", s2.ClientURL(), url)
	}
	// The same client reconnects and the stored message is still there.
	var stream jetstream.Stream
	devtest.Eventually(t, "the client to reconnect and find the stream", func() bool {
		stream, err = js.Stream(ctx, "EVENTS")
		return err == nil
	}, devtest.Until(ctx), devtest.Explain(func() string { return fmt.Sprint(err) }))
	msg, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != "before" {
		t.Fatalf("message 1 = %q, want before", msg.Data)
	}
}
