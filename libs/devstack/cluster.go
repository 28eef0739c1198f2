package devstack

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NATSCluster is an in-process JetStream cluster: n nats-servers on loopback,
// each with its own store directory, routed to every other one. Its nodes can
// be stopped and started again on the same ports and store, as a crashed or
// redeployed node comes back, to test what clients see while the cluster
// loses a node and elects new leaders.
type NATSCluster struct {
	name   string
	dir    string
	ownDir bool
	cfg    natsConfig
	nodes  []clusterNode

	mu      sync.Mutex
	servers []*server.Server // nil while a node is stopped
}

// clusterNode is what a node keeps across restarts.
type clusterNode struct {
	name                  string
	storeDir              string
	clientPort, routePort int
}

// ClusterAccount is the account JetStream keeps the streams of clients that
// connect without credentials in (nats-server's global account).
const ClusterAccount = server.DEFAULT_GLOBAL_ACCOUNT

// clusterReadyTimeout bounds how long StartNATSCluster and StartNode wait for
// the cluster to elect its JetStream meta leader and for every running node to
// be current. An election takes a few seconds (nats-server's election timeouts
// are 4–9 s); a slow machine may need several.
const clusterReadyTimeout = 60 * time.Second

// StartNATSCluster starts an n-node JetStream cluster (n ≥ 3 lets R3 streams
// survive the loss of one node) and waits until it has elected its JetStream
// meta leader and every node is current. Node i stores under dir/<name-i>;
// when dir is "" a temporary directory is used and removed by Shutdown. The
// options are StartNATS's: WithSyncAlways and WithNATSLogger apply to every
// node, WithNATSPort is refused (each node needs its own ports).
//
// Clients connect to ClientURL, which lists every node. The caller owns the
// cluster: call Shutdown.
func StartNATSCluster(n int, dir string, opts ...NATSOption) (_ *NATSCluster, err error) {
	if n < 1 {
		return nil, fmt.Errorf("devstack: a NATS cluster of %d nodes", n)
	}
	cfg := natsConfig{port: server.RANDOM_PORT}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.port != server.RANDOM_PORT {
		return nil, errors.New("devstack: WithNATSPort does not apply to a cluster: each node picks its own ports")
	}
	c := &NATSCluster{name: "ledger-dev-" + rand.Text()[:8], dir: dir, cfg: cfg, servers: make([]*server.Server, n)}
	if dir == "" {
		if c.dir, err = natsTempDir(); err != nil {
			return nil, fmt.Errorf("devstack: nats store directory: %w", err)
		}
		c.ownDir = true
	}
	defer func() {
		if err != nil {
			c.Shutdown()
		}
	}()
	// Every node must know the others' route ports before any starts, and
	// keep its ports across restarts: reserve them all at once, then free
	// them for the servers.
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, fmt.Errorf("devstack: nats cluster ports: %w", err)
	}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		c.nodes = append(c.nodes, clusterNode{
			name: name, storeDir: filepath.Join(c.dir, name),
			clientPort: ports[2*i], routePort: ports[2*i+1],
		})
	}
	for i := range n {
		if err := c.start(i); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// start runs node i (not running) and waits until it accepts clients.
func (c *NATSCluster) start(i int) error {
	node := c.nodes[i]
	var routes []*url.URL
	for j, other := range c.nodes {
		if j != i {
			routes = append(routes, &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(other.routePort))})
		}
	}
	s, err := server.NewServer(&server.Options{
		ServerName: node.name,
		Host:       "127.0.0.1",
		Port:       node.clientPort,
		Cluster:    server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: node.routePort},
		Routes:     routes,
		JetStream:  true,
		StoreDir:   node.storeDir,
		SyncAlways: c.cfg.syncAlways,
		// As StartNATS: the host process owns its signals.
		NoSigs:                 true,
		NoLog:                  c.cfg.logger == nil,
		DisableJetStreamBanner: true,
	})
	if err != nil {
		return fmt.Errorf("devstack: configure nats node %s: %w", node.name, err)
	}
	if c.cfg.logger != nil {
		s.SetLoggerV2(slogNATSLogger{c.cfg.logger.With("nats_node", node.name)}, false, false, false)
	}
	go s.Start()
	if !s.ReadyForConnections(natsReadyTimeout) {
		s.Shutdown()
		s.WaitForShutdown()
		return fmt.Errorf("devstack: nats node %s (client port %d, route port %d) not ready for connections after %s", node.name, node.clientPort, node.routePort, natsReadyTimeout)
	}
	c.mu.Lock()
	c.servers[i] = s
	c.mu.Unlock()
	return nil
}

// freePorts reserves n distinct free loopback ports and releases them.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Name is the cluster's name (the cluster block's name in a config file).
func (c *NATSCluster) Name() string { return c.name }

// Size is the number of nodes, running or not.
func (c *NATSCluster) Size() int { return len(c.nodes) }

// ClientURL lists every node's client URL, comma-separated: what nats.Connect
// and LEDGER_NATS_URL take, so a client fails over to another node when its
// own goes away.
func (c *NATSCluster) ClientURL() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(n.clientPort))
	}
	return strings.Join(urls, ",")
}

// NodeName is node i's server name, as stream and consumer info report
// their leaders and replicas.
func (c *NATSCluster) NodeName(i int) string { return c.nodes[i].name }

// Server is node i's server, or nil while it is stopped.
func (c *NATSCluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

// running returns the running servers.
func (c *NATSCluster) running() []*server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*server.Server
	for _, s := range c.servers {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// StopNode shuts node i down, as a crash or a redeploy stops it (its store
// stays), and waits until it has. Stopping a stopped node does nothing.
func (c *NATSCluster) StopNode(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		StopNATS(s, 0) // a node lost: its clients move to the others
	}
}

// StartNode starts stopped node i again on its ports and store and waits
// until the cluster is ready again (WaitReady).
func (c *NATSCluster) StartNode(ctx context.Context, i int) error {
	if c.Server(i) != nil {
		return fmt.Errorf("devstack: nats node %s is running", c.nodes[i].name)
	}
	if err := c.start(i); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, clusterReadyTimeout)
	defer cancel()
	return c.WaitReady(ctx)
}

// MetaLeader is the index of the node leading the JetStream meta group, or -1
// while there is none (an election is under way).
func (c *NATSCluster) MetaLeader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.servers {
		if s != nil && s.JetStreamIsLeader() {
			return i
		}
	}
	return -1
}

// StreamLeader is the index of the node leading stream (in ClusterAccount),
// or -1 while it has none.
func (c *NATSCluster) StreamLeader(stream string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.servers {
		if s != nil && s.JetStreamIsStreamLeader(ClusterAccount, stream) {
			return i
		}
	}
	return -1
}

// WaitReady waits until the cluster has a JetStream meta leader that sees
// every running node as a peer and every running node's view of the cluster
// is current, or ctx ends. Only then does JetStream answer (create a stream,
// place replicas) on every node.
func (c *NATSCluster) WaitReady(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		running := c.running()
		leader, peers, current := "", 0, 0
		for _, s := range running {
			if s.JetStreamIsLeader() {
				leader, peers = s.Name(), len(s.JetStreamClusterPeers())
			}
			if s.JetStreamIsCurrent() {
				current++
			}
		}
		if leader != "" && peers == len(running) && current == len(running) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devstack: nats cluster %s not ready (%d nodes running, meta leader %q seeing %d peers, %d current): %w",
				c.name, len(running), leader, peers, current, ctx.Err())
		case <-tick.C:
		}
	}
}

// Shutdown stops every node and removes the store when StartNATSCluster made
// it.
func (c *NATSCluster) Shutdown() {
	for i := range c.servers {
		c.StopNode(i)
	}
	if c.ownDir {
		_ = os.RemoveAll(c.dir)
	}
}

// StepDownStreamLeader asks stream's leader to step down, as an operator does
// with `nats stream cluster step-down`, through nc (a client of the cluster in
// the stream's account), and returns the new leader's server name once one is
// elected. The request goes to JetStream's API
// ($JS.API.STREAM.LEADER.STEPDOWN.<stream>): the leader hands over to a
// current replica, so the stream is unavailable only for the hand-over. It
// fails when the stream has no other replica to take over.
func StepDownStreamLeader(ctx context.Context, nc *nats.Conn, stream string) (newLeader string, err error) {
	return stepDown(ctx, nc, "stream "+stream, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, func() (*server.ClusterInfo, error) {
		var resp server.JSApiStreamInfoResponse
		if err := apiRequest(ctx, nc, "$JS.API.STREAM.INFO."+stream, &resp, &resp.ApiResponse); err != nil || resp.StreamInfo == nil {
			return nil, err
		}
		return resp.Cluster, nil
	})
}

// StepDownConsumerLeader is StepDownStreamLeader for a durable consumer of
// stream ($JS.API.CONSUMER.LEADER.STEPDOWN.<stream>.<consumer>, `nats consumer
// cluster step-down`): its pending pull requests and unacknowledged
// deliveries move to the new leader.
func StepDownConsumerLeader(ctx context.Context, nc *nats.Conn, stream, consumer string) (newLeader string, err error) {
	return stepDown(ctx, nc, "consumer "+stream+" > "+consumer, "$JS.API.CONSUMER.LEADER.STEPDOWN."+stream+"."+consumer, func() (*server.ClusterInfo, error) {
		var resp server.JSApiConsumerInfoResponse
		if err := apiRequest(ctx, nc, "$JS.API.CONSUMER.INFO."+stream+"."+consumer, &resp, &resp.ApiResponse); err != nil || resp.ConsumerInfo == nil {
			return nil, err
		}
		return resp.Cluster, nil
	})
}

// stepDown sends the step-down request to subject and waits until cluster
// names another leader than before.
func stepDown(ctx context.Context, nc *nats.Conn, what, subject string, cluster func() (*server.ClusterInfo, error)) (string, error) {
	before, err := cluster()
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if before == nil || before.Leader == "" {
		return "", fmt.Errorf("%s has no leader to step down", what)
	}
	var resp server.JSApiLeaderStepDownResponse
	if err := apiRequest(ctx, nc, subject, &resp, &resp.ApiResponse); err != nil {
		return "", fmt.Errorf("%s: step down: %w", what, err)
	}
	if !resp.Success {
		return "", fmt.Errorf("%s: step down refused", what)
	}
	// The answer comes before the new leader is elected: ask until another
	// node leads.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		after, err := cluster()
		if err == nil && after != nil && after.Leader != "" && after.Leader != before.Leader {
			return after.Leader, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%s: no new leader after %s stepped down (%v): %w", what, before.Leader, err, ctx.Err())
		case <-tick.C:
		}
	}
}

// apiRequest sends a JetStream API request over nc and decodes the answer
// into resp, whose embedded ApiResponse is api. Only a leader answers most
// requests: while there is none, the request times out after a second.
func apiRequest(ctx context.Context, nc *nats.Conn, subject string, resp any, api *server.ApiResponse) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	msg, err := nc.RequestWithContext(ctx, subject, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(msg.Data, resp); err != nil {
		return fmt.Errorf("answer %q: %w", msg.Data, err)
	}
	if api.Error != nil {
		return api.Error
	}
	return nil
}
