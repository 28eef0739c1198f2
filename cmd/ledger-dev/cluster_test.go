package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/services/mapper"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
	"github.com/ledgersync/ledger/services/statecallback"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// TestScaleOutOnAJetStreamCluster is issue 15's cluster test: the whole
// pipeline runs against an in-process 3-node JetStream cluster with its
// streams at replicas 3 (LEDGER_NATS_REPLICAS=3, every service connected to
// the three client URLs). While a few hundred invoices flow, the node leading
// the SAGE stream is stopped and later started again on the same ports and
// store, and then the OUTBOX and SAGE streams' leaders are moved with a
// step-down: every invoice reaches Sage exactly once and every sync-state row
// comes back synced, with nothing dead-lettered.
func TestScaleOutOnAJetStreamCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the pipeline on a 3-node JetStream cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	lap := func(what string, since time.Time) {
		t.Logf("%-48s %6.1fs (at %5.1fs)", what, time.Since(since).Seconds(), time.Since(began).Seconds())
	}
	logFile, err := os.Create(filepath.Join(t.TempDir(), "stack.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer dumpOnFailure(t, "stack log", logFile.Name())
	log := slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))

	cluster, err := devstack.StartNATSCluster(3, t.TempDir(), devstack.WithSyncAlways(), devstack.WithNATSLogger(log.With("component", "nats")))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Shutdown() // after the stack's Close: deferred first
	lap("3-node cluster ready", began)

	step := time.Now()
	st, err := stack.Start(ctx, stack.Options{StateDir: t.TempDir(), Log: log, ShopDrainInterval: 200 * time.Millisecond,
		NATSURL: cluster.ClientURL(), NATSReplicas: 3})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	defer st.Close()
	for _, name := range []string{bus.StreamOutbox, bus.StreamSage, bus.StreamResults, bus.StreamDLQ} {
		s, err := st.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: replicas %d, cluster %+v; want 3 replicas on the cluster", name, info.Config.Replicas, info.Cluster)
		}
	}
	lap("stack started, streams at R3", step)

	const tenant = "clustered"
	step = time.Now()
	if err := st.Onboard(ctx, tenant, "Clustered shop"); err != nil {
		t.Fatal(err)
	}
	lap("tenant onboarded", step)

	const invoices = 600
	seed := st.Shop.Seed(rand.New(rand.NewPCG(15, 2)), magentosim.Options{Customers: 40, Invoices: invoices, GuestShare: 0.2})
	expected := stack.ExpectSeed(seed)
	biz := st.Sage.LeadBusinessID()
	inSage := func() int { return len(st.Sage.Invoices(biz)) }
	flowing := time.Now()
	// How long Sage and the shop's sync-state table stand still at most.
	var sageProgress, shopProgress progress
	sampled := make(chan struct{})
	sampleCtx, stopSampling := context.WithCancel(ctx)
	go func() {
		defer close(sampled)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sampleCtx.Done():
				return
			case now := <-tick.C:
				if n := inSage(); n < invoices {
					sageProgress.observe(n, now)
				}
				if sum := st.Check(expected); sum.Synced < len(expected) {
					shopProgress.observe(sum.Synced, now)
				}
			}
		}
	}()
	defer func() { stopSampling(); <-sampled }()

	devtest.Eventually(t, "the first 50 invoices in Sage", func() bool { return inSage() >= 50 }, devtest.Until(ctx))
	lap(fmt.Sprintf("first %d invoices in Sage", inSage()), flowing)

	// A node goes away mid-run: the one leading SAGE, so the stream must
	// elect a new leader while the mapper publishes to it and the writer
	// consumes from it.
	var victim int
	devtest.Eventually(t, "SAGE to have a leader", func() bool { victim = cluster.StreamLeader(bus.StreamSage); return victim >= 0 }, devtest.Until(ctx))
	step = time.Now()
	cluster.StopNode(victim)
	lap(fmt.Sprintf("node %s (leading SAGE) stopped, %d in Sage", cluster.NodeName(victim), inSage()), step)
	before := inSage()
	devtest.Eventually(t, "progress with a node down", func() bool { return inSage() >= before+30 }, devtest.Until(ctx), devtest.Within(30*time.Second))
	lap(fmt.Sprintf("30 more invoices in Sage with %s down", cluster.NodeName(victim)), step)

	step = time.Now()
	if err := cluster.StartNode(ctx, victim); err != nil {
		t.Fatal(err)
	}
	lap(fmt.Sprintf("node %s restarted, cluster ready, %d in Sage", cluster.NodeName(victim), inSage()), step)

	// Operators move leaders (a rolling upgrade of the cluster does it for
	// every node): step down OUTBOX's and SAGE's while events flow, then the
	// consumers' (the mapper's, the tenant's writer's, statecallback's).
	stepDown := func(what string, down func(context.Context) (string, error)) {
		t.Helper()
		step := time.Now()
		var leader string
		var err error
		devtest.Eventually(t, what+"'s leader to step down", func() bool {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			leader, err = down(sctx)
			return err == nil
		}, devtest.Until(ctx), devtest.Explain(func() string { return fmt.Sprint(err) }))
		lap(fmt.Sprintf("%s led by %s after a step-down, %d in Sage", what, leader, inSage()), step)
	}
	for _, stream := range []string{bus.StreamOutbox, bus.StreamSage} {
		stepDown(stream, func(ctx context.Context) (string, error) { return devstack.StepDownStreamLeader(ctx, st.NC, stream) })
	}
	for _, c := range []struct{ stream, durable string }{
		{bus.StreamOutbox, mapper.Durable}, {bus.StreamSage, sagewriter.ConsumerName(tenant)}, {bus.StreamResults, statecallback.Durable},
	} {
		stepDown(c.durable, func(ctx context.Context) (string, error) {
			return devstack.StepDownConsumerLeader(ctx, st.NC, c.stream, c.durable)
		})
	}

	step = time.Now()
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
	sum := st.WaitSettled(wctx, expected)
	wcancel()
	stopSampling()
	<-sampled
	lap("settled", step)
	lap(fmt.Sprintf("%d invoices from seeding to settled", invoices), flowing)
	t.Logf("%s; longest stall: Sage %s, sync-state %s", sum, sageProgress.stall().Round(time.Millisecond), shopProgress.stall().Round(time.Millisecond))
	if !sum.OK() || sum.Synced != len(expected) {
		t.Fatalf("not every event arrived once: %+v", sum)
	}
	// A lost node costs an election and, for a consumer it led, the pull
	// requests waiting there (the client notices two missed heartbeats, 10 s);
	// a request whose answer is lost in a leader change is sent again after
	// bus.AttemptTimeout. Nothing waits for a handler's whole work timeout
	// (a minute), as it did before publishes and acknowledgements had an
	// attempt timeout.
	if longest := max(sageProgress.stall(), shopProgress.stall()); longest > 30*time.Second {
		t.Errorf("progress stood still for %s", longest)
	}
	if n := inSage(); n != invoices {
		t.Errorf("Sage has %d invoices, want %d", n, invoices)
	}
	if d := st.SageDuplicates(); d != 0 {
		t.Errorf("Sage has %d duplicate documents", d)
	}
	dlq, err := st.JS.Stream(ctx, bus.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := dlq.Info(ctx); err != nil {
		t.Error(err)
	} else if info.State.Msgs != 0 {
		t.Errorf("%d dead letters: nothing may be dead-lettered because a node went away", info.State.Msgs)
	}
	var unfinished []string
	rows, err := st.Store.Pool().Query(ctx, `SELECT status, count(*) FROM sync_runs WHERE tenant_id = $1 GROUP BY status`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			t.Fatal(err)
		}
		if status != "succeeded" {
			unfinished = append(unfinished, fmt.Sprintf("%s=%d", status, n))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(unfinished) > 0 {
		t.Errorf("runs not succeeded: %s", strings.Join(unfinished, " "))
	}
}
