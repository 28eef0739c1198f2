package main

import (
	"context"
	"database/sql"
	"regexp"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	"github.com/ledgersync/ledger/services/admin"
	"github.com/ledgersync/ledger/services/ingest"
	"github.com/ledgersync/ledger/services/mapper"
	"github.com/ledgersync/ledger/services/relay"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
	"github.com/ledgersync/ledger/services/statecallback"
)

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// metricCatalogue is every metric family the five services register, read
// from their real registries (every collector's descriptions, so a family
// no sample has reached yet is in it too): family → services. The services
// are built as their Programs build them, over a throwaway database and
// NATS, and never started.
func metricCatalogue(t *testing.T) map[string][]string {
	t.Helper()
	ctx := context.Background()
	sealer, _ := secrets.NewRandomKeyRing()
	st, err := store.Open(ctx, devtest.Database(t), sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	nc, err := nats.Connect(devtest.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	log := telemetry.Discard()
	endpoints := sage.At("http://127.0.0.1:1")
	regs := map[string]*prometheus.Registry{}
	must := func(name string, reg *prometheus.Registry, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		regs[name] = reg
	}
	ing, err := ingest.New(ingest.Config{}, st, js, log)
	must("ingest", registry(ing, err), err)
	mp, err := mapper.New(mapper.Config{}, st, js, log)
	must("mapper", registry(mp, err), err)
	wr, err := sagewriter.New(sagewriter.Config{Endpoints: endpoints, ClientID: stack.SageClientID,
		ClientSecret: secrets.String(stack.SageClientSecret)}, st, js, log)
	must("sage-writer", registry(wr, err), err)
	sc, err := statecallback.New(statecallback.Config{}, st, js, log)
	must("statecallback", registry(sc, err), err)
	ad, err := admin.New(admin.Config{AdminToken: secrets.String("catalogue-token-0123456789"), Env: "dev",
		PublicURL: "http://127.0.0.1:1", LedgerBaseURL: "https://ledger.example", Sage: endpoints,
		SageClientID: stack.SageClientID, SageClientSecret: secrets.String(stack.SageClientSecret)}, st, log, admin.WithJetStream(js))
	must("admin", registry(ad, err), err)
	// The relay's database is not dialled until used.
	rdb, err := sql.Open("mysql", "root@tcp(127.0.0.1:1)/catalogue")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	rl, err := relay.New(relay.Config{MySQLDSN: "root@tcp(127.0.0.1:1)/catalogue", TenantID: "t1", APIKey: "catalogue-key"}, rdb, nc, log)
	must("relay", registry(rl, err), err)

	out := map[string][]string{}
	for name, reg := range regs {
		ch := make(chan *prometheus.Desc, 64)
		go func() { reg.Describe(ch); close(ch) }()
		for d := range ch {
			m := fqNameRE.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("%s: a description without a name: %s", name, d)
			}
			if !slices.Contains(out[m[1]], name) {
				out[m[1]] = append(out[m[1]], name)
			}
		}
	}
	if len(out) < 40 {
		t.Fatalf("the catalogue has %d families: are the registries still reachable?", len(out))
	}
	return out
}

func registry[S interface{ Registry() *prometheus.Registry }](s S, err error) *prometheus.Registry {
	if err != nil {
		return nil
	}
	return s.Registry()
}
