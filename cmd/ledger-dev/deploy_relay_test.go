package main

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/services/relay"
)

// TestRelayUsersPublishOnlyTheirTenant runs nats-server with
// deploy/nats/relay/hub.conf (ports and store moved to the test's) and checks
// what a relay user may do: publish its own tenant's rows to INGEST and get
// the acknowledgement on its inbox, and take its own tenant's back channel on
// SHOP (the relay's consumer); nothing else.
func TestRelayUsersPublishOnlyTheirTenant(t *testing.T) {
	// Its own stack: it runs beside the other heavy end-to-end tests.
	t.Parallel()
	opts, err := server.ProcessConfigFile(filepath.Join(repoRoot, "deploy", "nats", "relay", "hub.conf"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.HTTPPort, opts.LeafNode.Port = "127.0.0.1", -1, 0, 0
	opts.StoreDir = t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	ledger, err := nats.Connect(ns.ClientURL(), nats.UserInfo("ledger", "change-me-ledger"))
	if err != nil {
		t.Fatal(err)
	}
	defer ledger.Close()
	ljs, _ := jetstream.New(ledger)
	if err := bus.EnsureStreams(ctx, ljs, 1); err != nil {
		t.Fatalf("the ledger user cannot create the streams: %v", err)
	}

	denied := make(chan error, 10)
	t1, err := nats.Connect(ns.ClientURL(), nats.UserInfo("relay-t1", "change-me-t1"), nats.CustomInboxPrefix("_INBOX_relay_t1"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { denied <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer t1.Close()
	js, _ := jetstream.New(t1)
	// Its own tenant: stored and acknowledged.
	if _, err := js.Publish(ctx, bus.IngestSubject("t1", "invoice.created"), []byte(`{}`)); err != nil {
		t.Fatalf("relay-t1 cannot publish its own rows: %v", err)
	}
	// Another tenant's subject, and any other stream: refused by the server.
	for _, subject := range []string{bus.IngestSubject("t2", "invoice.created"), bus.OutboxSubject("t1", "invoice.created"), "$JS.API.STREAM.INFO.INGEST"} {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		_, err := js.Publish(pctx, subject, []byte(`{}`))
		pcancel()
		if err == nil {
			t.Errorf("relay-t1 published to %s", subject)
		}
		select {
		case err := <-denied:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Errorf("%s: %v, want a permissions violation", subject, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: no permissions violation reported", subject)
		}
	}
	// It cannot read the streams either (the API is not among its subjects).
	sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
	defer scancel()
	if _, err := js.Stream(sctx, bus.StreamIngest); err == nil {
		t.Error("relay-t1 read the INGEST stream's info")
	}
	s, err := ljs.Stream(ctx, bus.StreamIngest)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("INGEST holds %v messages (%v), want relay-t1's one", info.State.Msgs, err)
	}

	// The back channel: Ledger publishes for both tenants; relay-t1 takes
	// its own through its consumer and acknowledges it, and can neither make
	// a consumer that reads t2's nor one under another name.
	for _, tenant := range []string{"t1", "t2"} {
		if _, err := ljs.Publish(ctx, bus.ShopSubject(tenant, bus.ShopRefused), []byte(tenant)); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamShop, jetstream.ConsumerConfig{Durable: relay.BackDurable("t1"),
		FilterSubject: bus.ShopTenantFilter("t1"), AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("relay-t1 cannot create its back-channel consumer: %v", err)
	}
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, string(m.Data()))
		if err := m.DoubleAck(ctx); err != nil {
			t.Errorf("relay-t1 cannot acknowledge its message: %v", err)
		}
	}
	if len(got) != 1 || got[0] != "t1" {
		t.Fatalf("relay-t1 fetched %q, want its own one message", got)
	}
	for name, cfg := range map[string]jetstream.ConsumerConfig{
		"t2's filter":  {Durable: relay.BackDurable("t1"), FilterSubject: bus.ShopTenantFilter("t2"), AckPolicy: jetstream.AckExplicitPolicy},
		"t2's name":    {Durable: relay.BackDurable("t2"), FilterSubject: bus.ShopTenantFilter("t2"), AckPolicy: jetstream.AckExplicitPolicy},
		"every tenant": {Durable: relay.BackDurable("t1"), FilterSubject: bus.ShopAll, AckPolicy: jetstream.AckExplicitPolicy},
	} {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.CreateOrUpdateConsumer(cctx, bus.StreamShop, cfg)
		ccancel()
		if err == nil {
			t.Errorf("relay-t1 created a SHOP consumer with %s", name)
		}
	}
	sh, err := ljs.Stream(ctx, bus.StreamShop)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := sh.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("SHOP holds %v messages (%v), want only t2's", info.State.Msgs, err)
	}
}
