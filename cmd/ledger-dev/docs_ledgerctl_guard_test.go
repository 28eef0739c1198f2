package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDocsNameRealLedgerctlCommands: every ledgerctl command line in the code
// of the operator docs (docs/*.md and the READMEs) names a command ledgerctl
// has, with flags it accepts, as its command table (read from the source by
// ledgerctlCommands) defines them. TestRunbooksCoverEveryCode holds the
// runbooks and the dead-letter guide to the stricter form (GROUP COMMAND
// first); here a group alone ("like `ledgerctl runs`"), a synopsis
// ("ledgerctl [global flags] …") and a diagram are prose, not command lines.
func TestDocsNameRealLedgerctlCommands(t *testing.T) {
	dir := filepath.Join(repoRoot, "cmd", "ledgerctl")
	cmds, globals, err := ledgerctlCommands(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) < 25 || !slices.Contains(cmds["dlq purge"], "yes") {
		t.Fatalf("read %d ledgerctl commands (dlq purge: %v): does the scan still recognise the command table?", len(cmds), cmds["dlq purge"])
	}
	defaults, err := ledgerctlGroupDefaults(dir)
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, pattern := range []string{"docs/*.md", "README.md", "services/*/README.md", "cmd/*/README.md", "libs/*/README.md", "sim/*/README.md"} {
		m, err := filepath.Glob(filepath.Join(repoRoot, pattern))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, m...)
	}
	if len(docs) < 10 {
		t.Fatalf("found %d docs: %v", len(docs), docs)
	}
	mentions := 0
	for _, path := range docs {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, path)
		n, problems := checkLedgerctlCommandLines(string(src), cmds, globals, defaults)
		mentions += n
		for _, p := range problems {
			t.Errorf("%s: %s", rel, p)
		}
	}
	if mentions < 50 {
		t.Fatalf("checked %d ledgerctl command lines in %d docs: does the scan still find them?", mentions, len(docs))
	}
	t.Logf("%d ledgerctl command lines in %d docs", mentions, len(docs))

	t.Run("fails on a command or flag that does not exist", func(t *testing.T) {
		for doc, want := range map[string]string{
			"`ledgerctl dlq drain --tenant T`":              `no command "dlq drain"`,
			"`ledgerctl runs list --tenant T --everything`": "has no flag --everything",
			"`ledgerctl widgets`":                           `no command group "widgets"`,
			"`ledgerctl reconcile --tenant T --bogus`":      "ledgerctl reconcile run has no flag --bogus",
		} {
			if _, got := checkLedgerctlCommandLines(doc, cmds, globals, defaults); !anyContains(got, want) {
				t.Errorf("%s: got %q, want a problem containing %q", doc, got, want)
			}
		}
		for _, doc := range []string{"`ledgerctl runs list --tenant T --magento-id 42 --output json`", "like `ledgerctl runs`",
			"`source <(ledgerctl completion bash)`", "`ledgerctl reconcile --tenant T --since DATE`", "`ledgerctl magento connect --help`"} {
			if _, got := checkLedgerctlCommandLines(doc, cmds, globals, defaults); len(got) > 0 {
				t.Errorf("%s: %q", doc, got)
			}
		}
	})
}

// ledgerctlGroupDefaults reads groupDefaults from ledgerctl's main.go: the
// command a group runs when a flag follows its name.
func ledgerctlGroupDefaults(dir string) (map[string]string, error) {
	src, err := os.ReadFile(filepath.Join(dir, "main.go"))
	if err != nil {
		return nil, err
	}
	m := regexp.MustCompile(`var groupDefaults = map\[string\]string\{([^}]*)\}`).FindSubmatch(src)
	if m == nil {
		return nil, fmt.Errorf("no groupDefaults map in %s/main.go", dir)
	}
	out := map[string]string{}
	for _, kv := range regexp.MustCompile(`"([a-z-]+)":\s*"([a-z-]+)"`).FindAllStringSubmatch(string(m[1]), -1) {
		out[kv[1]] = kv[2]
	}
	return out, nil
}

// checkLedgerctlCommandLines checks each "ledgerctl GROUP [COMMAND] [--flag…]"
// in the code of doc, returning how many it checked and the problems.
func checkLedgerctlCommandLines(doc string, cmds map[string][]string, globals []string, defaults map[string]string) (int, []string) {
	groups := map[string]bool{}
	for name := range cmds {
		g, _, _ := strings.Cut(name, " ")
		groups[g] = true
	}
	word := regexp.MustCompile(`^[a-z][a-z-]*$`)
	flagRE := regexp.MustCompile(`(?:^|\s)--([a-z][a-z-]*)`)
	n := 0
	var problems []string
	for _, s := range codeSpans(doc) {
		for _, part := range strings.Split(s, "ledgerctl ")[1:] {
			if i := strings.IndexAny(part, "|;&#)"); i >= 0 {
				part = part[:i]
			}
			f := strings.Fields(part)
			if len(f) == 0 || !word.MatchString(f[0]) {
				continue // a synopsis, a diagram, or global flags only
			}
			n++
			line := "ledgerctl " + strings.TrimSpace(part)
			if !groups[f[0]] {
				problems = append(problems, fmt.Sprintf("%q: ledgerctl has no command group %q", line, f[0]))
				continue
			}
			if len(f) == 1 || !word.MatchString(f[1]) {
				def, ok := defaults[f[0]]
				if len(f) == 1 || !strings.HasPrefix(f[1], "--") {
					continue // the group named in prose
				}
				if !ok {
					problems = append(problems, fmt.Sprintf("%q: name the command after the group (ledgerctl %s COMMAND)", line, f[0]))
					continue
				}
				f = slices.Insert(f, 1, def)
			}
			name := f[0] + " " + f[1]
			flags, ok := cmds[name]
			if !ok {
				problems = append(problems, fmt.Sprintf("%q: ledgerctl has no command %q", line, name))
				continue
			}
			for _, m := range flagRE.FindAllStringSubmatch(strings.Join(f[2:], " "), -1) {
				if !slices.Contains(flags, m[1]) && !slices.Contains(globals, m[1]) && m[1] != "help" {
					problems = append(problems, fmt.Sprintf("%q: ledgerctl %s has no flag --%s", line, name, m[1]))
				}
			}
		}
	}
	return n, problems
}
