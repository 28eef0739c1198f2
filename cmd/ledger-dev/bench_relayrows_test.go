package main

// The relay's own benchmark (issue 11): rows/s from a shop's MariaDB outbox to
// the OUTBOX stream (relay → INGEST → ingest → OUTBOX), beside raw JetStream
// publishing with acks in the same run, and the latency from a row's insert
// to its OutboxEvent on OUTBOX at a paced 200 rows/s (the module's cron path
// takes up to 60 s). `make bench-relay`; never in make test.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/relay"
)

func TestRelayBench(t *testing.T) {
	if os.Getenv("LEDGER_BENCH") == "" {
		t.Skip("make bench-relay runs this (LEDGER_BENCH=1)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	st, err := stack.Start(ctx, stack.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	const tenant = "bench-relay"
	rs, err := st.StartRelayShop(ctx, tenant, "Relay bench shop", tenant+"-owner")
	if err != nil {
		t.Fatal(err)
	}
	// What is measured ends at OUTBOX: the mapper, writer and statecallback
	// would only compete for the two cores.
	for _, svc := range []string{"mapper", "sage-writer", "statecallback"} {
		if err := st.StopService(svc); err != nil {
			t.Fatal(err)
		}
	}

	// Arrivals on OUTBOX by idempotency key (a core subscription).
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	sub, err := st.NC.Subscribe("ledger.outbox."+tenant+".>", func(m *nats.Msg) {
		at := time.Now()
		ev := &ledgerv1.OutboxEvent{}
		if proto.Unmarshal(m.Data, ev) == nil {
			mu.Lock()
			if _, ok := arrived[ev.GetIdempotencyKey()]; !ok {
				arrived[ev.GetIdempotencyKey()] = at
			}
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	count := func(prefix string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for k := range arrived {
			if strings.HasPrefix(k, prefix) {
				n++
			}
		}
		return n
	}
	insert := func(key string, id int) {
		if _, err := rs.DB.ExecContext(ctx, "INSERT INTO byte8_event_outbox (idempotency_key, event_name, payload, last_error) VALUES (?, 'invoice.created', ?, '')",
			key, fmt.Sprintf(`{"magento_entity_id":%d,"website_id":1,"store_id":1,"occurred_at":"2026-04-29T10:11:12Z","payload":{"increment_id":"%09d","paid":false}}`, id, id)); err != nil {
			t.Fatal(err)
		}
	}

	var report strings.Builder
	say := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		t.Log(line)
		report.WriteString(line + "\n")
	}

	// Burst: n rows inserted at once (one multi-row INSERT per 500), then
	// timed until every one is on OUTBOX.
	const n = 5000
	start := time.Now()
	for b := 0; b < n; b += 500 {
		var q strings.Builder
		q.WriteString("INSERT INTO byte8_event_outbox (idempotency_key, event_name, payload, last_error) VALUES ")
		args := []any{}
		for i := b; i < b+500; i++ {
			if i > b {
				q.WriteString(",")
			}
			q.WriteString("(?, 'invoice.created', ?, '')")
			args = append(args, fmt.Sprintf("burst:%d", i),
				fmt.Sprintf(`{"magento_entity_id":%d,"website_id":1,"store_id":1,"occurred_at":"2026-04-29T10:11:12Z","payload":{"increment_id":"%09d","paid":false}}`, i+1, i+1))
		}
		if _, err := rs.DB.ExecContext(ctx, q.String(), args...); err != nil {
			t.Fatal(err)
		}
	}
	inserted := time.Since(start)
	devtest.Eventually(t, "the burst on OUTBOX", func() bool { return count("burst:") == n }, devtest.Until(ctx))
	burst := time.Since(start)
	base, err := runPublish(ctx, st.NATSURL, n, 400, 4)
	if err != nil {
		t.Fatal(err)
	}
	say("relay burst: %d rows MariaDB → relay → INGEST → ingest → OUTBOX in %s = %.0f rows/s (inserting them took %s)",
		n, burst.Round(time.Millisecond), float64(n)/burst.Seconds(), inserted.Round(time.Millisecond))
	say("baseline: raw JetStream publish with acks (4 publishers, 400 B) %d msgs in %s = %.0f msgs/s; ratio %.3f",
		n, base.Round(time.Millisecond), float64(n)/base.Seconds(), base.Seconds()/burst.Seconds())
	var runs int
	_ = st.Store.Pool().QueryRow(ctx, "SELECT count(*) FROM sync_runs WHERE tenant_id = $1", tenant).Scan(&runs)
	say("runs recorded: %d for %d rows", runs, n)

	// Paced: 200 rows/s for 10 s, one INSERT per row as the module writes
	// them; latency = OutboxEvent on OUTBOX − row committed. With the default
	// idle poll interval and a long one: while rows keep coming the relay
	// polls every relay.BusyPollInterval either way.
	if err := st.StopService("relay-" + tenant); err != nil {
		t.Fatal(err)
	}
	tn, err := st.Store.Tenant(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	const rate, seconds = 200, 10
	next := 100000
	for round, poll := range []time.Duration{relay.DefaultPollInterval, time.Second} {
		cfg := rs.RelayConfig(st, tn.Binding.APIKey)
		cfg.PollInterval = poll
		replica := startReplica(t, ctx, cfg)
		prefix := fmt.Sprintf("paced%d:", round)
		insertedAt := map[string]time.Time{}
		tick := time.NewTicker(time.Second / rate)
		for i := range rate * seconds {
			<-tick.C
			key := fmt.Sprintf("%s%d", prefix, i)
			next++
			insert(key, next)
			insertedAt[key] = time.Now()
		}
		tick.Stop()
		devtest.Eventually(t, "the paced rows on OUTBOX", func() bool { return count(prefix) == rate*seconds }, devtest.Until(ctx))
		replica.stop()
		var lat []time.Duration
		mu.Lock()
		for k, at := range insertedAt {
			lat = append(lat, arrived[k].Sub(at))
		}
		mu.Unlock()
		slices.Sort(lat)
		q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(100 * time.Microsecond) }
		say("paced: %d rows/s for %d s, RELAY_POLL_INTERVAL=%s (busy %s): insert → OUTBOX p50 %s, p90 %s, p99 %s, max %s (the module's cron path: up to 60 s)",
			rate, seconds, poll, relay.BusyPollInterval, q(0.5), q(0.9), q(0.99), lat[len(lat)-1].Round(100*time.Microsecond))
	}
	say("reproduce: make bench-relay")
	if dir := os.Getenv("BENCH_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "relay-report.txt"), []byte(report.String()), 0o644)
	}
}
