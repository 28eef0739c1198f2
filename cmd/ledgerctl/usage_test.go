package main

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestHelpListsEveryCommand: ledgerctl --help names every command of the
// table with its summary. The hand-written text the table replaced fails the
// same check: it left out sage disconnect.
func TestHelpListsEveryCommand(t *testing.T) {
	stdout, _, code := ledgerctl(t, "--help")
	if code != exitOK {
		t.Fatalf("--help: exit %d", code)
	}
	for _, p := range missingFromHelp(commandTable, stdout) {
		t.Error(p)
	}

	t.Run("fails on the hand-written usage", func(t *testing.T) {
		old, err := os.ReadFile("testdata/handwritten-usage.txt")
		if err != nil {
			t.Fatal(err)
		}
		got := missingFromHelp(commandTable, string(old))
		if !slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, "--help does not list sage disconnect") }) {
			t.Fatalf("want sage disconnect reported missing, got %q", got)
		}
	})
}

// missingFromHelp returns each command of table that help does not list as a
// line "  SYNOPSIS  SUMMARY" (or the summary on the next line).
func missingFromHelp(table []commandGroup, help string) []string {
	lines := strings.Split(help, "\n")
	var out []string
	for _, g := range table {
		for _, c := range g.commands {
			syn := g.synopsis(c)
			i := slices.IndexFunc(lines, func(l string) bool {
				return strings.HasPrefix(strings.TrimSpace(l), syn+" ") || strings.TrimSpace(l) == syn
			})
			if i < 0 {
				out = append(out, fmt.Sprintf("--help does not list %s %s (%q)", g.name, c.name, syn))
				continue
			}
			if !strings.HasSuffix(lines[i], " "+c.summary) && (i+1 == len(lines) || strings.TrimSpace(lines[i+1]) != c.summary) {
				out = append(out, fmt.Sprintf("--help lists %s %s without its summary %q", g.name, c.name, c.summary))
			}
		}
	}
	return out
}

// TestDispatchMatchesTable runs every command of the table with --help (the
// dispatcher must reach it and print its synopsis and help) and every group
// without a command (the answer must list the group's commands).
func TestDispatchMatchesTable(t *testing.T) {
	for _, g := range commandTable {
		_, stderr, code := ledgerctl(t, g.name)
		if code != exitUsage {
			t.Errorf("ledgerctl %s: exit %d, want 2", g.name, code)
		}
		for _, c := range g.commands {
			if !strings.Contains(stderr, "ledgerctl "+g.synopsis(c)+"\n") {
				t.Errorf("ledgerctl %s does not list %s:\n%s", g.name, c.name, stderr)
			}
			stdout, stderr, code := ledgerctl(t, g.name, c.name, "--help")
			want := "Usage: ledgerctl " + g.synopsis(c) + "\n\n" + c.help + "\n"
			if code != exitOK || !strings.HasPrefix(stdout, want) {
				t.Errorf("ledgerctl %s %s --help: exit %d\n%s%s\nwant it to start with\n%s", g.name, c.name, code, stdout, stderr, want)
			}
		}
	}
}

// TestCommandTable checks the table itself: unique names, a summary and help
// for each command, and synopses naming exactly the flags the command defines.
func TestCommandTable(t *testing.T) {
	for _, p := range tableProblems(commandTable) {
		t.Error(p)
	}

	t.Run("fails on a broken table", func(t *testing.T) {
		sage := slices.Clone(sageCommands)
		sage[1].name = "connect"    // a second sage connect
		sage[0].args = "--shop URL" // a flag sage connect does not define, and --tenant left out
		sage[0].summary = ""
		broken := []commandGroup{{"sage", sage}, {"sage", nil}}
		got := tableProblems(broken)
		for _, want := range []string{
			"group sage appears twice",
			"sage connect appears twice",
			"sage connect has no summary",
			"sage connect: the synopsis names --shop, which the command does not define",
			"sage connect: the synopsis leaves out --tenant",
		} {
			if !slices.Contains(got, want) {
				t.Errorf("want %q among %q", want, got)
			}
		}
	})
}

var (
	commandName  = regexp.MustCompile(`^[a-z][a-z-]*$`)
	synopsisFlag = regexp.MustCompile(`--([a-z][a-z-]*)`)
)

func tableProblems(table []commandGroup) []string {
	global := pflag.NewFlagSet("", pflag.ContinueOnError)
	new(globals).register(global)
	var out []string
	groups := map[string]bool{}
	for _, g := range table {
		if groups[g.name] {
			out = append(out, fmt.Sprintf("group %s appears twice", g.name))
		}
		groups[g.name] = true
		if !commandName.MatchString(g.name) {
			out = append(out, fmt.Sprintf("group %q: use lower-case letters and dashes", g.name))
		}
		names := map[string]bool{}
		for _, c := range g.commands {
			id := g.name + " " + c.name
			if names[c.name] {
				out = append(out, id+" appears twice")
			}
			names[c.name] = true
			if !commandName.MatchString(c.name) {
				out = append(out, fmt.Sprintf("%q: use lower-case letters and dashes", id))
			}
			if strings.TrimSpace(c.summary) == "" {
				out = append(out, id+" has no summary")
			}
			if strings.TrimSpace(c.help) == "" {
				out = append(out, id+" has no help")
			}
			if c.setup == nil {
				out = append(out, id+" has no setup")
				continue
			}
			fs := pflag.NewFlagSet(id, pflag.ContinueOnError)
			c.setup(fs)
			named := map[string]bool{}
			for _, m := range synopsisFlag.FindAllStringSubmatch(c.args, -1) {
				named[m[1]] = true
				if fs.Lookup(m[1]) == nil {
					out = append(out, fmt.Sprintf("%s: the synopsis names --%s, which the command does not define", id, m[1]))
				}
			}
			fs.VisitAll(func(f *pflag.Flag) {
				if !named[f.Name] && global.Lookup(f.Name) == nil {
					out = append(out, fmt.Sprintf("%s: the synopsis leaves out --%s", id, f.Name))
				}
			})
		}
	}
	return out
}

// TestReadmeDescribesEveryCommand: README.md has a section per command.
func TestReadmeDescribesEveryCommand(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range missingFromReadme(commandTable, string(readme)) {
		t.Error(p)
	}

	t.Run("fails on a command without a section", func(t *testing.T) {
		cut := strings.Replace(string(readme), "### `sage disconnect", "### `sage unlink", 1)
		got := missingFromReadme(commandTable, cut)
		if want := "README.md has no section \"### `sage disconnect …`\""; !slices.Equal(got, []string{want}) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

// missingFromReadme returns each command of table without a "### `GROUP NAME"
// heading in readme (the rest of the heading may abbreviate the flags).
func missingFromReadme(table []commandGroup, readme string) []string {
	var out []string
	for _, g := range table {
		for _, c := range g.commands {
			heading := "### `" + g.name + " " + c.name
			if !strings.Contains(readme, heading+" ") && !strings.Contains(readme, heading+"`") {
				out = append(out, fmt.Sprintf("README.md has no section %q", heading+" …`"))
			}
		}
	}
	return out
}
