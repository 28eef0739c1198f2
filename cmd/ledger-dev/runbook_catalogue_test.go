package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestRunbookCatalogueIsFresh checks that services/admin/runbook_gen.go, the
// console's catalogue of causes and fixes (the admin module cannot embed
// ../../docs), is what services/admin/internal/runbookgen makes of
// docs/runbooks.md today: an entry edited, added or removed on the page
// without regenerating fails here, before an operator reads a stale fix.
func TestRunbookCatalogueIsFresh(t *testing.T) {
	t.Parallel()
	// The generator prints the file instead of writing it (-out -): the
	// comparison is made in memory and the tree is left as it is.
	cmd := exec.CommandContext(t.Context(), "go", "run", "./services/admin/internal/runbookgen/main.go",
		"-in", "docs/runbooks.md", "-out", "-")
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	want, err := cmd.Output()
	if err != nil {
		t.Fatalf("runbookgen: %v\n%s", err, stderr.String())
	}
	got, err := os.ReadFile(filepath.Join(repoRoot, "services/admin/runbook_gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("services/admin/runbook_gen.go is stale: docs/runbooks.md changed since it was generated.\n" +
			"Regenerate it from the repository root with\n\n\tgo generate ./services/admin\n\nand commit the result.")
	}
}
