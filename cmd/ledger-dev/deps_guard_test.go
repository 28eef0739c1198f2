package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// devOnlyPackages are what the development stack and the tests embed (an
// in-process NATS server, a throwaway Postgres); no production binary may link
// them. nats-server reaches every service's go.mod through libs/devstack,
// which the services' tests import: that requirement is expected, linking it
// is not.
var devOnlyPackages = []string{"github.com/nats-io/nats-server/", "github.com/ledgersync/ledger/libs/devstack"}

// TestBinariesDoNotLinkDevstack builds the package list of every service
// binary and of ledgerctl as a deployment does (its own module, GOWORK=off)
// and fails when one links a development-only package.
func TestBinariesDoNotLinkDevstack(t *testing.T) {
	mains, err := filepath.Glob(filepath.Join(repoRoot, "services", "*", "cmd", "*", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if len(mains) != 6 {
		t.Fatalf("found %d service binaries, want 6: %v", len(mains), mains)
	}
	type binary struct{ module, pkg string }
	bins := []binary{{filepath.Join(repoRoot, "cmd", "ledgerctl"), "."}}
	for _, m := range mains {
		rel, _ := filepath.Rel(repoRoot, filepath.Dir(m)) // services/NAME/cmd/NAME
		parts := strings.Split(filepath.ToSlash(rel), "/")
		bins = append(bins, binary{filepath.Join(repoRoot, "services", parts[1]), "./" + strings.Join(parts[2:], "/")})
	}
	for _, b := range bins {
		linked, err := devOnlyDeps(b.module, b.pkg)
		if err != nil {
			t.Fatal(err)
		}
		if len(linked) > 0 {
			t.Errorf("%s links development-only packages (production code must not import libs/devstack): %s",
				filepath.Join(b.module, b.pkg), strings.Join(linked, ", "))
		}
	}

	t.Run("fails on a binary that embeds NATS", func(t *testing.T) {
		linked, err := devOnlyDeps(filepath.Join(repoRoot, "cmd", "ledger-dev"), ".")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(linked, "github.com/ledgersync/ledger/libs/devstack") ||
			!slices.ContainsFunc(linked, func(p string) bool { return strings.HasPrefix(p, "github.com/nats-io/nats-server/") }) {
			t.Fatalf("ledger-dev links %v, want libs/devstack and nats-server among them", linked)
		}
	})
}

// devOnlyDeps lists the development-only packages pkg (in module dir) links.
func devOnlyDeps(dir, pkg string) ([]string, error) {
	cmd := exec.Command("go", "list", "-deps", pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: go list -deps %s: %w", dir, pkg, err)
	}
	var linked []string
	for dep := range strings.Lines(string(out)) {
		dep = strings.TrimSpace(dep)
		if slices.ContainsFunc(devOnlyPackages, func(p string) bool { return strings.HasPrefix(dep, p) }) {
			linked = append(linked, dep)
		}
	}
	return linked, nil
}
