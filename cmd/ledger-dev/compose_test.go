package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

const repoRoot = "../.."

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
	p, err := loadCompose(t, []string{"LEDGER_SECRET_KEY=k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "ADMIN_TOKEN=x"})
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
