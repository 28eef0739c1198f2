package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestOneVersionOfEveryDependency fails when two modules of the workspace
// require different versions of the same module (or state different go
// versions). Each module also builds on its own (GOWORK=off, make
// check-modules) with the versions its go.mod requires, so a module pinning an
// older version than the rest builds with versions no workspace test runs.
// `make tidy` aligns them (go work sync); `make check-versions` runs this test.
func TestOneVersionOfEveryDependency(t *testing.T) {
	modules, err := workspaceModules(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	reqs := map[string][]requirement{}
	for _, m := range modules {
		if reqs[m], err = moduleRequirements(filepath.Join(repoRoot, m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range versionConflicts(reqs) {
		t.Error(p)
	}

	t.Run("fails on a module that pins an older version", func(t *testing.T) {
		// proto's go.mod before it was aligned.
		dir := t.TempDir()
		gomod := "module example.com/old\n\ngo 1.26.0\n\nrequire golang.org/x/net v0.60.0 // indirect\n\n" +
			"require github.com/ledgersync/ledger/libs v0.0.0\n\nreplace github.com/ledgersync/ledger/libs => ../libs\n"
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
			t.Fatal(err)
		}
		old, err := moduleRequirements(dir)
		if err != nil {
			t.Fatal(err)
		}
		broken := map[string][]requirement{"old": old, "libs": reqs["libs"]}
		got := versionConflicts(broken)
		want := "golang.org/x/net: v0.60.0 (old), v0.62.0 (libs)"
		if len(got) != 1 || !strings.HasPrefix(got[0], want) {
			t.Fatalf("conflicts %q, want one starting %q", got, want)
		}
	})
}

// requirement is one module a go.mod requires, at the version it resolves to
// after replace directives. The go directive counts as the module "go".
type requirement struct {
	Path, Version string
}

// moduleRequirements reads dir's go.mod with `go mod edit -json`. Requirements
// replaced by a directory (the workspace's own modules) are left out: they
// have no version.
func moduleRequirements(dir string) ([]requirement, error) {
	cmd := exec.Command("go", "mod", "edit", "-json")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: go mod edit -json: %w", dir, err)
	}
	type modVer struct{ Path, Version string }
	var mod struct {
		Go      string
		Require []modVer
		Replace []struct{ Old, New modVer }
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	reqs := []requirement{{"go", mod.Go}}
	for _, r := range mod.Require {
		req := requirement(r)
		for _, rep := range mod.Replace {
			if rep.Old.Path == r.Path && (rep.Old.Version == "" || rep.Old.Version == r.Version) {
				req = requirement(rep.New) // Version "" when replaced by a directory
			}
		}
		if req.Version != "" {
			reqs = append(reqs, req)
		}
	}
	return reqs, nil
}

// versionConflicts lists every module required at more than one version, with
// the modules requiring each version.
func versionConflicts(reqs map[string][]requirement) []string {
	byPath := map[string]map[string][]string{} // path → version → requiring modules
	for mod, rs := range reqs {
		for _, r := range rs {
			if byPath[r.Path] == nil {
				byPath[r.Path] = map[string][]string{}
			}
			byPath[r.Path][r.Version] = append(byPath[r.Path][r.Version], mod)
		}
	}
	var out []string
	for _, path := range slices.Sorted(maps.Keys(byPath)) {
		versions := byPath[path]
		if len(versions) < 2 {
			continue
		}
		var parts []string
		for _, v := range slices.Sorted(maps.Keys(versions)) {
			mods := versions[v]
			slices.Sort(mods)
			parts = append(parts, fmt.Sprintf("%s (%s)", v, strings.Join(mods, ", ")))
		}
		out = append(out, fmt.Sprintf("%s: %s: run make tidy (go work sync) so every module requires the same version",
			path, strings.Join(parts, ", ")))
	}
	return out
}
