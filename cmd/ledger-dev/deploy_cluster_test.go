package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// clusterOverride is the compose override that runs NATS as a 3-node
// JetStream cluster, and clusterNodes its NATS services.
var (
	clusterOverride = filepath.Join("deploy", "compose.cluster.yml")
	clusterNodes    = []string{"nats", "nats-2", "nats-3"}
)

// loadComposeFiles loads files (relative to the repository) on top of each
// other, as `docker compose -f docker-compose.yml -f <override>` does: paths
// in every file are relative to the first one's folder.
func loadComposeFiles(t *testing.T, env []string, files ...string) (*types.Project, error) {
	t.Helper()
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(repoRoot, f)
	}
	opts, err := cli.NewProjectOptions(paths, cli.WithWorkingDirectory(repoRoot), cli.WithEnv(env), cli.WithName("ledger"))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// checkCluster reports why p (docker-compose.yml with the cluster override)
// would not run Ledger on a JetStream cluster of nodes: a node that would not
// start as Ledger needs NATS (checkNATS), nodes that do not form one cluster
// (a shared server_name, another cluster name, a node missing from another's
// routes, a shared store volume, another image), or a Ledger service that does
// not dial every node, does not keep 3 replicas or may start before a node is
// healthy. Each Ledger service's configuration is loaded with the functions
// its main uses, so it sets the process environment: callers must not run in
// parallel.
func checkCluster(t *testing.T, p *types.Project, nodes []string) error {
	t.Helper()
	var errs []error
	type node struct {
		serverName, clusterName string
		clientPort, routePort   int
		routes                  []string // host:port
		volume                  string
	}
	byName := map[string]node{}
	for _, name := range nodes {
		svc, ok := p.Services[name]
		if !ok {
			errs = append(errs, fmt.Errorf("no service %s", name))
			continue
		}
		if svc.Image != p.Services[nodes[0]].Image {
			errs = append(errs, fmt.Errorf("%s runs %s, %s runs %s: run one nats-server version", name, svc.Image, nodes[0], p.Services[nodes[0]].Image))
		}
		if svc.Restart != types.RestartPolicyUnlessStopped {
			errs = append(errs, fmt.Errorf("%s: restart %q, want %s", name, svc.Restart, types.RestartPolicyUnlessStopped))
		}
		c, err := natsServiceContainer(p, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := checkNATS(c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		opts, _ := natsOptions(c) // checkNATS parsed them
		n := node{serverName: opts.ServerName, clusterName: opts.Cluster.Name, clientPort: opts.Port, routePort: opts.Cluster.Port}
		for _, r := range opts.Routes {
			n.routes = append(n.routes, r.Host)
		}
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Target == opts.StoreDir {
				n.volume = v.Source
			}
		}
		if n.serverName == "" || n.clusterName == "" || n.routePort == 0 {
			errs = append(errs, fmt.Errorf("%s: server_name %q, cluster name %q, cluster port %d: a JetStream cluster node needs all three", name, n.serverName, n.clusterName, n.routePort))
		}
		byName[name] = n
		t.Logf("%s: server_name %s, cluster %s, client port %d, routes %v, store on volume %s", name, n.serverName, n.clusterName, n.clientPort, n.routes, n.volume)
	}
	serverNames, volumes := map[string]string{}, map[string]string{}
	for _, name := range nodes {
		n, ok := byName[name]
		if !ok {
			continue
		}
		if other, dup := serverNames[n.serverName]; dup {
			errs = append(errs, fmt.Errorf("%s and %s are both server_name %q", other, name, n.serverName))
		}
		serverNames[n.serverName] = name
		if other, dup := volumes[n.volume]; dup {
			errs = append(errs, fmt.Errorf("%s and %s store JetStream on the same volume %q: a replica needs its own disk", other, name, n.volume))
		}
		volumes[n.volume] = name
		if first := byName[nodes[0]]; n.clusterName != first.clusterName {
			errs = append(errs, fmt.Errorf("%s is in cluster %q, %s in %q", name, n.clusterName, nodes[0], first.clusterName))
		}
		for _, other := range nodes {
			if o, ok := byName[other]; ok && other != name && !slices.Contains(n.routes, net.JoinHostPort(other, strconv.Itoa(o.routePort))) {
				errs = append(errs, fmt.Errorf("%s has no route to %s:%d (routes %v)", name, other, o.routePort, n.routes))
			}
		}
	}

	for _, service := range slices.Sorted(maps.Keys(ledgerServices)) {
		svc, ok := p.Services[service]
		if !ok {
			errs = append(errs, fmt.Errorf("no service %s", service))
			continue
		}
		env, err := serviceEnv(svc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", service, err))
			continue
		}
		loaded, err := loadServiceConfig(t, service, env)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s does not start with the environment the override gives it: %w", service, err))
			continue
		}
		if loaded.settings.NATSReplicas != 3 {
			errs = append(errs, fmt.Errorf("%s keeps %d replicas of its streams (LEDGER_NATS_REPLICAS): want 3, one per node", service, loaded.settings.NATSReplicas))
		}
		var dialed []string
		for _, raw := range strings.Split(loaded.settings.NATSURL, ",") {
			u, err := url.Parse(strings.TrimSpace(raw))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: LEDGER_NATS_URL: %w", service, err))
				continue
			}
			dialed = append(dialed, u.Hostname())
			if n, ok := byName[u.Hostname()]; ok && u.Port() != strconv.Itoa(n.clientPort) {
				errs = append(errs, fmt.Errorf("%s dials %s, whose client port is %d", service, raw, n.clientPort))
			}
		}
		slices.Sort(dialed)
		if want := slices.Sorted(slices.Values(nodes)); !slices.Equal(dialed, want) {
			errs = append(errs, fmt.Errorf("%s dials %v, want every node %v: a client dialing one node cannot fail over", service, dialed, want))
		}
		for _, n := range nodes {
			if d, ok := svc.DependsOn[n]; !ok || d.Condition != types.ServiceConditionHealthy {
				errs = append(errs, fmt.Errorf("%s must wait for %s to be healthy: its R3 streams need every node", service, n))
			}
		}
	}
	return errors.Join(errs...)
}

// TestComposeCluster loads docker-compose.yml with deploy/compose.cluster.yml
// on top, as `docker compose -f docker-compose.yml -f
// deploy/compose.cluster.yml up` does (no Docker engine runs here), and checks
// it runs Ledger on a 3-node JetStream cluster: every node's command line and
// config go through nats-server's own option parsing and start-up validation.
func TestComposeCluster(t *testing.T) {
	p, err := loadComposeFiles(t, composeTestEnv, "docker-compose.yml", clusterOverride)
	if err != nil {
		t.Fatalf("docker-compose.yml with %s does not load: %v", clusterOverride, err)
	}
	base, err := loadCompose(t, composeTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(p.Services), len(base.Services)+len(clusterNodes)-1; got != want {
		t.Errorf("%d services with the override, want %d (docker-compose.yml's and the added nodes): update clusterNodes", got, want)
	}
	if err := checkCluster(t, p, clusterNodes); err != nil {
		t.Fatalf("the override would not run Ledger on a JetStream cluster:\n%v", err)
	}
	// The override changes NATS and nothing else of docker-compose.yml.
	for name, svc := range base.Services {
		got := p.Services[name]
		if svc.Image != got.Image || !slices.Equal(svc.Command, got.Command) || (svc.Build == nil) != (got.Build == nil) ||
			(svc.Build != nil && !maps.EqualFunc(svc.Build.Args, got.Build.Args, func(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) })) {
			t.Errorf("service %s runs something else with the override", name)
		}
	}
}

// TestComposeClusterGuard shows checkCluster failing on what it exists to
// catch, each time starting from the real override.
func TestComposeClusterGuard(t *testing.T) {
	setEnv := func(p *types.Project, service, key, value string) {
		svc := p.Services[service]
		svc.Environment[key] = &value
		p.Services[service] = svc
	}
	mount := func(p *types.Project, service, conf string) {
		svc := p.Services[service]
		for i, v := range svc.Volumes {
			if v.Target == "/etc/nats/nats.conf" {
				svc.Volumes[i].Source = filepath.Join(filepath.Dir(v.Source), conf)
			}
		}
		p.Services[service] = svc
	}
	for _, tc := range []struct {
		name    string
		change  func(p *types.Project)
		wantErr string
	}{
		{"one replica", func(p *types.Project) { setEnv(p, "mapper", "LEDGER_NATS_REPLICAS", "1") }, "keeps 1 replicas"},
		{"a node left out of LEDGER_NATS_URL", func(p *types.Project) {
			setEnv(p, "ingest", "LEDGER_NATS_URL", "nats://nats:4222,nats://nats-2:4222")
		}, "cannot fail over"},
		{"two nodes with one server_name", func(p *types.Project) { mount(p, "nats-3", "nats-2.conf") }, `both server_name "nats-2"`},
		{"two nodes on one volume", func(p *types.Project) {
			svc := p.Services["nats-3"]
			for i, v := range svc.Volumes {
				if v.Target == "/data" {
					svc.Volumes[i].Source = "nats-2-data"
				}
			}
			p.Services["nats-3"] = svc
		}, "same volume"},
		{"not waiting for a node", func(p *types.Project) {
			svc := p.Services["sage-writer"]
			delete(svc.DependsOn, "nats-3")
			p.Services["sage-writer"] = svc
		}, "sage-writer must wait for nats-3"},
		{"a node not in the cluster", func(p *types.Project) { mount(p, "nats-2", "../nats.conf") }, "cluster port 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := loadComposeFiles(t, composeTestEnv, "docker-compose.yml", clusterOverride)
			if err != nil {
				t.Fatal(err)
			}
			tc.change(p)
			err = checkCluster(t, p, clusterNodes)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want an error containing %q, got %v", tc.wantErr, err)
			}
			t.Logf("fails as it should: %v", err)
		})
	}
}
