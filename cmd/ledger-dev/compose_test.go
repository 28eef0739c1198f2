package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ledgersync/ledger/libs/process"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/services/admin"
	"github.com/ledgersync/ledger/services/ingest"
	"github.com/ledgersync/ledger/services/mapper"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
	"github.com/ledgersync/ledger/services/statecallback"
)

const repoRoot = "../.."

// composeTestEnv is the shell environment of `docker compose up`: the two
// secrets README.md's recipe exports.
var composeTestEnv = []string{
	"LEDGER_SECRET_KEY=k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	"ADMIN_TOKEN=0123456789abcdef0123456789abcdef",
}

func loadCompose(t *testing.T, env []string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(repoRoot, "docker-compose.yml")},
		cli.WithWorkingDirectory(repoRoot), cli.WithEnv(env), cli.WithName("ledger"))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// TestComposeFile loads docker-compose.yml as `docker compose` would (no Docker
// engine runs here), and checks that it names only things the repository has.
func TestComposeFile(t *testing.T) {
	p, err := loadCompose(t, composeTestEnv)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"nats", "postgres", "ingest", "mapper", "sage-writer", "statecallback", "admin", "magento-sim", "sage-sim"}
	for _, name := range want {
		svc, ok := p.Services[name]
		if !ok {
			t.Errorf("service %s is missing", name)
			continue
		}
		if svc.HealthCheck == nil || len(svc.HealthCheck.Test) == 0 {
			t.Errorf("service %s has no health check", name)
		}
		if svc.Restart != types.RestartPolicyUnlessStopped {
			t.Errorf("service %s: restart %q, want %s (see the comment at the top of docker-compose.yml)", name, svc.Restart, types.RestartPolicyUnlessStopped)
		}
		if svc.Build == nil {
			continue
		}
		cmd := svc.Build.Args["CMD"]
		if cmd == nil || *cmd == "" {
			t.Errorf("service %s: build arg CMD (the package to build) is missing", name)
			continue
		}
		main := filepath.Join(repoRoot, *cmd, "main.go")
		if _, err := os.Stat(main); err != nil {
			t.Errorf("service %s builds %s, which has no main.go: %v", name, *cmd, err)
		}
		for key := range svc.Environment {
			if !strings.Contains(string(readme), "`"+key+"`") {
				t.Errorf("service %s sets %s, which README.md's configuration table does not document", name, key)
			}
		}
		if name != "magento-sim" && name != "sage-sim" {
			for _, dep := range []string{"nats", "postgres"} {
				if d, ok := svc.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
					t.Errorf("service %s must wait for %s to be healthy", name, dep)
				}
			}
		}
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "Dockerfile")); err != nil {
		t.Errorf("the Dockerfile the services build from is missing: %v", err)
	}
	if len(p.Services) != len(want) {
		t.Errorf("compose has %d services, want %d: update this test with the new service", len(p.Services), len(want))
	}
}

// TestComposeRequiresSecrets: starting without a secret key must fail loudly,
// not run with an empty key.
func TestComposeRequiresSecrets(t *testing.T) {
	if _, err := loadCompose(t, []string{"ADMIN_TOKEN=x"}); err == nil || !strings.Contains(err.Error(), "LEDGER_SECRET_KEY") {
		t.Fatalf("want an error naming LEDGER_SECRET_KEY, got %v", err)
	}
}

// ledgerServices are the compose services that run a Ledger service, each with
// the configuration its main reads after process.SettingsFromEnv (see
// services/*/cmd/*/main.go). Each returns the address the service serves
// /readyz on.
var ledgerServices = map[string]func() (healthAddr string, err error){
	"ingest": func() (string, error) {
		c, err := ingest.ConfigFromEnv()
		return c.Addr, err
	},
	"mapper": func() (string, error) {
		c, err := mapper.ConfigFromEnv()
		return c.Addr, err
	},
	"sage-writer": func() (string, error) {
		c, err := sagewriter.ConfigFromEnv()
		return c.Addr, err
	},
	"statecallback": func() (string, error) {
		c, err := statecallback.ConfigFromEnv()
		return c.Addr, err
	},
	"admin": func() (string, error) {
		c, err := admin.ConfigFromEnv()
		return c.HTTPAddr, err
	},
}

// ledgerEnvPrefixes are the prefixes of every variable a Ledger service reads.
var ledgerEnvPrefixes = []string{"LEDGER_", "INGEST_", "MAPPER_", "WRITER_", "SAGE_", "STATECALLBACK_", "ADMIN_"}

// loadedService is what a service's main would start with.
type loadedService struct {
	settings   process.Settings
	healthAddr string
}

// loadServiceConfig loads service's configuration from exactly env, the way
// its main does, after clearing every Ledger variable of the test process. It
// also takes the steps before the first connection that could still fail on a
// variable: process.Connect's parsing of LEDGER_SECRET_KEY, and
// LEDGER_LOG_LEVEL, which telemetry.Logger silently ignores when misspelt. It
// sets the process environment, so its callers must not run in parallel.
func loadServiceConfig(t *testing.T, service string, env map[string]string) (loadedService, error) {
	t.Helper()
	load, ok := ledgerServices[service]
	if !ok {
		return loadedService{}, fmt.Errorf("%s is not a Ledger service this test knows: add it to ledgerServices", service)
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if slices.ContainsFunc(ledgerEnvPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			t.Setenv(name, "") // restored after the test
			os.Unsetenv(name)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	settings, serr := process.SettingsFromEnv()
	addr, cerr := load()
	if err := errors.Join(serr, cerr); err != nil {
		return loadedService{}, err
	}
	if _, err := secrets.ParseKeyRing(settings.SecretKey); err != nil {
		return loadedService{}, err
	}
	if lvl, ok := env["LEDGER_LOG_LEVEL"]; ok {
		var l slog.Level
		if err := l.UnmarshalText([]byte(lvl)); err != nil {
			return loadedService{}, fmt.Errorf("LEDGER_LOG_LEVEL=%q: use debug, info, warn or error", lvl)
		}
	}
	return loadedService{settings: settings, healthAddr: addr}, nil
}

// serviceEnv is the environment compose gives svc, after interpolation.
func serviceEnv(svc types.ServiceConfig) (map[string]string, error) {
	env := map[string]string{}
	for k, v := range svc.Environment {
		if v == nil {
			return nil, fmt.Errorf("%s takes its value from the host's environment: give it one in docker-compose.yml", k)
		}
		env[k] = *v
	}
	return env, nil
}

// TestComposeServiceConfig loads every Ledger service's configuration from
// exactly the environment docker-compose.yml gives it, with the functions its
// main uses, so a missing or invalid variable fails here and not in a
// restarting container. It also checks that the service listens where its
// health check looks, reachable from outside its container, and that its
// NATS and Postgres URLs name compose services.
func TestComposeServiceConfig(t *testing.T) {
	p, err := loadCompose(t, composeTestEnv)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	seen := 0
	for name, svc := range p.Services {
		if svc.Build == nil || svc.Build.Args["CMD"] == nil || !strings.HasPrefix(*svc.Build.Args["CMD"], "./services/") {
			continue
		}
		seen++
		t.Run(name, func(t *testing.T) {
			env, err := serviceEnv(svc)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			loaded, err := loadServiceConfig(t, name, env)
			if err != nil {
				t.Fatalf("%s does not start with the environment docker-compose.yml gives it:\n%v", name, err)
			}
			host, port, err := net.SplitHostPort(loaded.healthAddr)
			if err != nil {
				t.Fatalf("%s listens on %q: %v", name, loaded.healthAddr, err)
			}
			if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
				t.Errorf("%s listens on %s, which other containers and published ports cannot reach: use 0.0.0.0", name, loaded.healthAddr)
			}
			if probe := healthCheckURL(svc); probe == nil || probe.Port() != port {
				t.Errorf("%s listens on port %s, but its health check probes %v", name, port, probe)
			}
			for _, dial := range []string{loaded.settings.NATSURL, loaded.settings.DatabaseURL} {
				u, err := url.Parse(dial)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				if _, ok := p.Services[u.Hostname()]; !ok {
					t.Errorf("%s dials %s, whose host is no compose service", name, u.Redacted())
				}
			}
		})
	}
	if seen != len(ledgerServices) {
		t.Errorf("compose builds %d services from ./services/, ledgerServices knows %d: keep them in step", seen, len(ledgerServices))
	}
}

// healthCheckURL is the URL a service's health check fetches, or nil.
func healthCheckURL(svc types.ServiceConfig) *url.URL {
	if svc.HealthCheck == nil {
		return nil
	}
	for _, arg := range svc.HealthCheck.Test {
		if u, err := url.Parse(arg); err == nil && u.Scheme == "http" {
			return u
		}
	}
	return nil
}

// TestComposeServiceConfigGuard shows loadServiceConfig failing on a variable
// compose could get wrong, starting from each service's real environment.
func TestComposeServiceConfigGuard(t *testing.T) {
	p, err := loadCompose(t, composeTestEnv)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	for _, tc := range []struct {
		service, variable, value string // value "" removes the variable
		wantErr                  string
	}{
		{"mapper", "LEDGER_DATABASE_URL", "", "LEDGER_DATABASE_URL is not set"},
		{"admin", "ADMIN_TOKEN", "x", "ADMIN_TOKEN is too short"},
		{"admin", "LEDGER_BASE_URL", "", "LEDGER_BASE_URL is not set"},
		{"sage-writer", "SAGE_CLIENT_SECRET", "", "SAGE_CLIENT_SECRET"},
		{"statecallback", "STATECALLBACK_ADDR", "0.0.0.0", "STATECALLBACK_ADDR"},
		{"ingest", "LEDGER_SECRET_KEY", "k1:short", "LEDGER_SECRET_KEY"},
		{"ingest", "LEDGER_LOG_LEVEL", "verbose", "LEDGER_LOG_LEVEL"},
	} {
		t.Run(tc.service+"/"+tc.variable, func(t *testing.T) {
			env, err := serviceEnv(p.Services[tc.service])
			if err != nil {
				t.Fatal(err)
			}
			if tc.value == "" {
				delete(env, tc.variable)
			} else {
				env[tc.variable] = tc.value
			}
			_, err = loadServiceConfig(t, tc.service, env)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want an error containing %q, got %v", tc.wantErr, err)
			}
			t.Logf("fails as it should: %v", err)
		})
	}
}
