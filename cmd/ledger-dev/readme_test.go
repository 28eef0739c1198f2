package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeDocumentsEverySetting keeps README.md's configuration table in step
// with the variables the services actually read.
func TestReadmeDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(repoRoot, "services", "*", "config.go"))
	files = append(files, filepath.Join(repoRoot, "libs", "process", "process.go"))
	name := regexp.MustCompile(`"((?:LEDGER|INGEST|MAPPER|WRITER|SAGE|STATECALLBACK|ADMIN)_[A-Z_]+)"`)
	seen := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range name.FindAllStringSubmatch(string(src), -1) {
			seen++
			if !strings.Contains(string(readme), "`"+m[1]+"`") {
				t.Errorf("%s reads %s, which README.md's configuration table does not document", f, m[1])
			}
		}
	}
	if seen < 20 {
		t.Fatalf("found only %d settings: did the config files move?", seen)
	}
}
