package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// programCalls lists the packages whose Program function file calls, by import
// path, and whether the file hands a Program to process.Main.
func programCalls(t *testing.T, file string) (calls map[string]bool, viaMain bool) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	imports := map[string]string{} // local name → import path
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		name := filepath.Base(path)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		imports[name] = path
	}
	calls = map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		pkg, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		switch {
		case sel.Sel.Name == "Program":
			calls[imports[pkg.Name]] = true
		case sel.Sel.Name == "Main" && imports[pkg.Name] == "github.com/ledgersync/ledger/libs/process":
			viaMain = true
		}
		return true
	})
	return calls, viaMain
}

// checkMain reports why main is not a main that only runs pkg's Program
// through process.Main.
func checkMain(t *testing.T, main, pkg string) string {
	t.Helper()
	calls, viaMain := programCalls(t, main)
	if !calls[pkg] || !viaMain {
		return "must run " + filepath.Base(pkg) + ".Program through process.Main"
	}
	src, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(src), "\n"); n > 25 {
		return strconv.Itoa(n) + " lines: a main should only hand its Program to process.Main"
	}
	return ""
}

// TestStackRunsTheBinariesPrograms: every service's main hands its Program to
// process.Main and does nothing else of substance, and the development stack
// (make run, make demo, the end-to-end tests) starts the same Programs, so the
// tests exercise the wiring production runs.
func TestStackRunsTheBinariesPrograms(t *testing.T) {
	stackCalls, _ := programCalls(t, filepath.Join("stack", "services.go"))
	for svc, main := range map[string]string{
		"services/ingest":        "services/ingest/cmd/ingest/main.go",
		"services/mapper":        "services/mapper/cmd/mapper/main.go",
		"services/sage-writer":   "services/sage-writer/cmd/sage-writer/main.go",
		"services/statecallback": "services/statecallback/cmd/statecallback/main.go",
		"services/admin":         "services/admin/cmd/admin/main.go",
	} {
		pkg := "github.com/ledgersync/ledger/" + svc
		if why := checkMain(t, filepath.Join(repoRoot, main), pkg); why != "" {
			t.Errorf("%s %s", main, why)
		}
		if !stackCalls[pkg] {
			t.Errorf("cmd/ledger-dev/stack does not start %s.Program: the dev stack would run a wiring the binary does not", filepath.Base(svc))
		}
	}

	// The outbox relay runs next to a shop, outside Ledger's infrastructure,
	// and is not part of the dev stack yet: its main is checked on its own.
	if why := checkMain(t, filepath.Join(repoRoot, "services/relay/cmd/relay/main.go"), "github.com/ledgersync/ledger/services/relay"); why != "" {
		t.Errorf("services/relay/cmd/relay/main.go %s", why)
	}

	t.Run("the guard refuses a main wired by hand", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "main.go")
		src := "package main\n\nimport \"github.com/ledgersync/ledger/services/ingest\"\n\nfunc main() { _, _ = ingest.New(ingest.Config{}, nil, nil, nil) }\n"
		if err := os.WriteFile(bad, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if why := checkMain(t, bad, "github.com/ledgersync/ledger/services/ingest"); why == "" {
			t.Fatal("a main that builds the service by hand passed")
		}
	})
}
