package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v4"
)

// readStrict reads path and decodes it with decode.
func readStrict(path string, decode func([]byte) error) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return decode(b)
}

// natsContainer is what docker-compose.yml gives the nats service, reduced to
// what nats-server sees inside its container.
type natsContainer struct {
	// args follow the image's entrypoint, which hands arguments starting with
	// "-" to nats-server.
	args []string
	// binds are the files and folders mounted from the repository, by their
	// path in the container.
	binds map[string]types.ServiceVolumeConfig
	// volumes are the container paths backed by a named volume.
	volumes []string
	// healthURL is what the health check fetches.
	healthURL string
	// clientURLs are the LEDGER_NATS_URL values the other services dial.
	clientURLs []string
}

// natsContainerOf reads the nats service out of a loaded compose project.
func natsContainerOf(p *types.Project) (natsContainer, error) {
	return natsServiceContainer(p, "nats")
}

// natsServiceContainer reads the NATS service name out of a loaded compose
// project. Its client URLs are the LEDGER_NATS_URL entries that name it (a
// cluster's list every node, comma-separated).
func natsServiceContainer(p *types.Project, name string) (natsContainer, error) {
	svc, ok := p.Services[name]
	if !ok {
		return natsContainer{}, fmt.Errorf("compose has no %s service", name)
	}
	if len(svc.Entrypoint) > 0 {
		return natsContainer{}, fmt.Errorf("%s: entrypoint %q replaces the image's, which this test assumes runs nats-server", name, svc.Entrypoint)
	}
	c := natsContainer{args: svc.Command, binds: map[string]types.ServiceVolumeConfig{}}
	for _, v := range svc.Volumes {
		switch v.Type {
		case types.VolumeTypeBind:
			c.binds[v.Target] = v
		case types.VolumeTypeVolume:
			c.volumes = append(c.volumes, v.Target)
		}
	}
	if u := healthCheckURL(svc); u != nil {
		c.healthURL = u.String()
	}
	for _, other := range p.Services {
		u := other.Environment["LEDGER_NATS_URL"]
		if u == nil {
			continue
		}
		for _, raw := range strings.Split(*u, ",") {
			if parsed, err := url.Parse(raw); err != nil || parsed.Hostname() == name {
				c.clientURLs = append(c.clientURLs, raw)
			}
		}
	}
	return c, nil
}

// hostPath maps a path inside the container to the repository file mounted
// there (a file mount, or a file inside a mounted folder), read-only.
func (c natsContainer) hostPath(inContainer string) (string, error) {
	var best types.ServiceVolumeConfig
	for target, v := range c.binds {
		rel, err := filepath.Rel(target, inContainer)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || len(target) < len(best.Target) {
			continue
		}
		best = v
	}
	if best.Target == "" {
		return "", fmt.Errorf("%s is not mounted into the container: bind-mount it from deploy/", inContainer)
	}
	if !best.ReadOnly {
		return "", fmt.Errorf("%s is mounted read-write from %s: mount configuration read-only (:ro)", best.Target, best.Source)
	}
	rel, _ := filepath.Rel(best.Target, inContainer)
	return filepath.Join(best.Source, rel), nil
}

// natsOptions parses the container's command line with the pinned
// nats-server's own option parsing, reading the -c file from the repository
// path mounted there. With a config file it adds -t, nats-server's "check the
// configuration and exit", which after parsing validates the options the way
// start-up does (nats-server refuses -t without a file). An unknown flag or
// config key, or a config file that is not mounted, is an error.
func natsOptions(c natsContainer) (*server.Options, error) {
	args := make([]string, 0, len(c.args)+1)
	for i := 0; i < len(c.args); i++ {
		arg := c.args[i]
		name, value, inline := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !strings.HasPrefix(arg, "-") || (name != "c" && name != "config") {
			args = append(args, arg)
			continue
		}
		if !inline {
			if i+1 == len(c.args) {
				return nil, fmt.Errorf("%s has no file", arg)
			}
			i++
			value = c.args[i]
		}
		path, err := c.hostPath(value)
		if err != nil {
			return nil, fmt.Errorf("config file %s: %w", value, err)
		}
		args = append(args, "-t", "-c", path)
	}
	flags := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	noop := func() {}
	opts, err := server.ConfigureOptions(flags, args, noop, noop, noop)
	if err != nil {
		return nil, fmt.Errorf("nats-server %s: %w", strings.Join(c.args, " "), err)
	}
	if opts == nil {
		return nil, fmt.Errorf("nats-server %s prints help or its version instead of running", strings.Join(c.args, " "))
	}
	return opts, nil
}

// checkNATS reports why the nats container would not run as Ledger needs it:
// its options do not parse, or JetStream is off, not fsync-always, not stored
// on a volume, or not on the ports the health check and the services use.
func checkNATS(c natsContainer) error {
	opts, err := natsOptions(c)
	if err != nil {
		return err
	}
	var errs []error
	if !opts.JetStream {
		errs = append(errs, errors.New("JetStream is not enabled: add a jetstream { } block"))
	}
	if !opts.SyncAlways {
		errs = append(errs, fmt.Errorf("JetStream sync_interval is %v, not always: an acknowledged event could be lost when the container dies (set jetstream { sync_interval: always })", opts.SyncInterval))
	}
	if !slices.Contains(c.volumes, opts.StoreDir) {
		errs = append(errs, fmt.Errorf("JetStream store_dir %q is not a mounted volume (%v): streams would vanish with the container", opts.StoreDir, c.volumes))
	}
	health, err := url.Parse(c.healthURL)
	switch {
	case err != nil || health.Port() == "":
		errs = append(errs, fmt.Errorf("health check URL %q: want http://127.0.0.1:<monitoring port>/healthz?js-enabled-only=true", c.healthURL))
	case health.Path != "/healthz" || health.Query().Get("js-enabled-only") != "true":
		errs = append(errs, fmt.Errorf("health check URL %q does not ask /healthz?js-enabled-only=true: NATS would be healthy before JetStream is", c.healthURL))
	case health.Port() != strconv.Itoa(opts.HTTPPort):
		errs = append(errs, fmt.Errorf("health check probes port %s, but the monitoring port (http_port) is %d", health.Port(), opts.HTTPPort))
	}
	port := opts.Port
	if port == 0 {
		port = server.DEFAULT_PORT
	}
	if len(c.clientURLs) == 0 {
		errs = append(errs, errors.New("no service sets LEDGER_NATS_URL"))
	}
	for _, raw := range c.clientURLs {
		if u, err := url.Parse(raw); err != nil || u.Port() != strconv.Itoa(port) {
			errs = append(errs, fmt.Errorf("LEDGER_NATS_URL=%s does not dial the client port %d", raw, port))
		}
	}
	return errors.Join(errs...)
}

// TestComposeNATS proves docker-compose.yml's nats service starts as Ledger
// needs it, without a Docker engine: its command line and mounted config file
// go through the pinned nats-server's own option parsing.
func TestComposeNATS(t *testing.T) {
	p, err := loadCompose(t, composeTestEnv)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	c, err := natsContainerOf(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkNATS(c); err != nil {
		t.Fatalf("the nats service would not run as Ledger needs it:\n%v", err)
	}
	// The command line holds only the config file: what the file can say, it says.
	if len(c.args) != 2 || c.args[0] != "-c" {
		t.Errorf("nats command %q: want only -c <file>, everything else in the file", c.args)
	}
}

// TestComposeNATSGuard shows checkNATS failing on what it exists to catch,
// starting with the command line docker-compose.yml used to have.
func TestComposeNATSGuard(t *testing.T) {
	const goodConf = "port: 4222\nhttp_port: 8222\njetstream { store_dir: \"/data\", sync_interval: always }\n"
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("good.conf", goodConf)
	container := func(args []string, conf string, readOnly bool) natsContainer {
		return natsContainer{
			args:       args,
			binds:      map[string]types.ServiceVolumeConfig{"/etc/nats/nats.conf": {Type: types.VolumeTypeBind, Source: conf, Target: "/etc/nats/nats.conf", ReadOnly: readOnly}},
			volumes:    []string{"/data"},
			healthURL:  "http://127.0.0.1:8222/healthz?js-enabled-only=true",
			clientURLs: []string{"nats://nats:4222"},
		}
	}
	withConf := []string{"-c", "/etc/nats/nats.conf"}
	wrongHealth := container(withConf, good, true)
	wrongHealth.healthURL = "http://127.0.0.1:8223/healthz?js-enabled-only=true"
	wrongClient := container(withConf, good, true)
	wrongClient.clientURLs = []string{"nats://nats:4223"}

	for _, tc := range []struct {
		name    string
		c       natsContainer
		wantErr string // "" means it must pass
	}{
		{"a good container passes", container(withConf, good, true), ""},
		{"the old command line: sync_interval is no flag",
			container([]string{"-js", "-sd", "/data", "-m", "8222", "--sync_interval", "always"}, good, true),
			"flag provided but not defined: -sync_interval"},
		{"the old flags without sync_interval: not fsync-always",
			container([]string{"-js", "-sd", "/data", "-m", "8222"}, good, true), "not always"},
		{"an unknown config key",
			container(withConf, write("typo.conf", strings.Replace(goodConf, "sync_interval", "sync_intervall", 1)), true),
			"sync_intervall"},
		{"JetStream off",
			container(withConf, write("nojs.conf", "port: 4222\nhttp_port: 8222\n"), true), "JetStream is not enabled"},
		{"store_dir not on a volume",
			container(withConf, write("tmp.conf", strings.Replace(goodConf, "/data", "/tmp/js", 1)), true), "store_dir"},
		{"config file not mounted", container([]string{"-c", "/etc/nats/other.conf"}, good, true), "not mounted"},
		{"config file mounted read-write", container(withConf, good, false), "read-only"},
		{"health check on another port", wrongHealth, "monitoring port"},
		{"services dial another port", wrongClient, "client port 4222"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkNATS(tc.c)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("want no error, got %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("want an error containing %q, got %v", tc.wantErr, err)
			case err != nil:
				t.Logf("fails as it should: %v", err)
			}
		})
	}
}

// TestDeployFilesParse checks every file under deploy/ with the parser of the
// program that reads it, so anything added there is checked too. A nats-server
// config fails on an error or a warning (a deprecated or unused key).
func TestDeployFilesParse(t *testing.T) {
	root := filepath.Join(repoRoot, "deploy")
	confs := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		switch {
		case d.Name() == "README.md":
		case filepath.Ext(path) == ".conf":
			confs++
			if err := (&server.Options{}).ProcessConfigFile(path); err != nil {
				t.Errorf("%s: nats-server does not accept it:\n%v", rel, err)
			}
		case strings.HasPrefix(d.Name(), "compose.") && filepath.Ext(path) == ".yml":
			// A compose override: it loads on top of docker-compose.yml
			// (TestComposeCluster checks deploy/compose.cluster.yml further).
			if _, err := loadComposeFiles(t, composeTestEnv, "docker-compose.yml", rel); err != nil {
				t.Errorf("%s: docker compose does not load it on top of docker-compose.yml:\n%v", rel, err)
			}
		case filepath.Dir(rel) == filepath.Join("deploy", "grafana") && filepath.Ext(path) == ".json":
			// A Grafana dashboard (TestDashboardAndAlertsUseRegisteredMetrics
			// checks its queries against the services' metrics).
			var dash grafanaDashboard
			if err := readStrict(path, func(b []byte) error { return json.Unmarshal(b, &dash) }); err != nil || len(dash.Panels) == 0 {
				t.Errorf("%s: not a Grafana dashboard with panels: %v", rel, err)
			}
		case filepath.Dir(rel) == filepath.Join("deploy", "prometheus") && filepath.Ext(path) == ".yml":
			// Prometheus rules and their promtool unit tests (make check-alerts
			// runs promtool over both; TestDashboardAndAlertsUseRegisteredMetrics
			// checks the rules' metrics and runbook links).
			var doc struct {
				Groups []any `yaml:"groups"`
				Tests  []any `yaml:"tests"`
			}
			if err := readStrict(path, func(b []byte) error { return yaml.Unmarshal(b, &doc) }); err != nil || len(doc.Groups)+len(doc.Tests) == 0 {
				t.Errorf("%s: neither Prometheus rule groups nor promtool tests: %v", rel, err)
			}
		default:
			t.Errorf("%s: no test checks this kind of file; teach TestDeployFilesParse to parse it", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if confs == 0 {
		t.Fatal("no *.conf under deploy/: docker-compose.yml mounts deploy/nats/nats.conf")
	}
}
