package devstack_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/devstack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
)

// TestNATSCluster: an R3 stream on a 3-node cluster keeps every acknowledged
// message while its leader's node is stopped and started again on the same
// ports and store, and while its leadership is moved; the restarted node
// catches up.
func TestNATSCluster(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	began := time.Now()
	c, err := devstack.StartNATSCluster(3, dir, devstack.WithSyncAlways())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	t.Logf("cluster ready in %s, meta leader %s", time.Since(began).Round(time.Millisecond), c.NodeName(c.MetaLeader()))
	for i := range c.Size() {
		if _, err := os.Stat(filepath.Join(dir, c.NodeName(i), "jetstream")); err != nil {
			t.Errorf("node %s does not store under its own folder of dir: %v", c.NodeName(i), err)
		}
	}

	nc, err := nats.Connect(c.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	published := 0
	publish := func(n int) {
		t.Helper()
		for range n {
			id := fmt.Sprint(published)
			var err error
			devtest.Eventually(t, "a publish to be acknowledged", func() bool {
				_, err = js.Publish(ctx, "events.x", []byte(id), jetstream.WithMsgID(id))
				return err == nil
			}, devtest.Until(ctx), devtest.Explain(func() string { return fmt.Sprint(err) }))
			published++
		}
	}
	publish(20)

	// Stop the stream leader's node; a new leader takes over.
	var leader int
	devtest.Eventually(t, "EVENTS to have a leader", func() bool { leader = c.StreamLeader("EVENTS"); return leader >= 0 }, devtest.Until(ctx))
	c.StopNode(leader)
	if c.Server(leader) != nil {
		t.Fatal("a stopped node still has a server")
	}
	devtest.Eventually(t, "EVENTS to elect a new leader", func() bool {
		l := c.StreamLeader("EVENTS")
		return l >= 0 && l != leader
	}, devtest.Until(ctx))
	publish(20)

	// Start it again: same ports, same store.
	if err := c.StartNode(ctx, leader); err != nil {
		t.Fatal(err)
	}
	devtest.Eventually(t, "the restarted node to catch up on EVENTS", func() bool {
		s := c.Server(leader)
		return s != nil && s.JetStreamIsStreamCurrent(devstack.ClusterAccount, "EVENTS")
	}, devtest.Until(ctx))

	// Move the leadership.
	before := c.NodeName(c.StreamLeader("EVENTS"))
	after, err := devstack.StepDownStreamLeader(ctx, nc, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if after == before {
		t.Fatalf("EVENTS is still led by %s after stepping down", after)
	}
	publish(20)

	// And a consumer's.
	if _, err := js.CreateOrUpdateConsumer(ctx, "EVENTS", jetstream.ConsumerConfig{Durable: "reader", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	var consumerLeader string
	devtest.Eventually(t, "the consumer's leader to step down", func() bool {
		consumerLeader, err = devstack.StepDownConsumerLeader(ctx, nc, "EVENTS", "reader")
		return err == nil
	}, devtest.Until(ctx), devtest.Explain(func() string { return fmt.Sprint(err) }))

	stream, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(published) {
		t.Fatalf("EVENTS holds %d messages, want %d", info.State.Msgs, published)
	}
	if len(info.Cluster.Replicas) != 2 {
		t.Fatalf("EVENTS has replicas %+v besides leader %s, want 2", info.Cluster.Replicas, info.Cluster.Leader)
	}
	t.Logf("%d messages kept across a stopped and restarted leader and a step-down (%s → %s; consumer now led by %s) in %s",
		published, before, after, consumerLeader, time.Since(began).Round(time.Millisecond))
}

func TestStartNATSClusterRefusesAPort(t *testing.T) {
	if _, err := devstack.StartNATSCluster(3, t.TempDir(), devstack.WithNATSPort(4222)); err == nil {
		t.Fatal("want an error")
	}
}
