//go:build ignore

// Command runbookgen turns docs/runbooks.md into services/admin/runbook_gen.go:
// the console's catalogue of causes and fixes, one entry per error class,
// error code, skip reason and ingest answer ("### code: `x`" and the like),
// keyed by the entry's anchor ("code-x", "class-x", "skip-x", "ingest-x").
//
// The admin module cannot embed ../../docs, so the page is compiled into the
// package instead; cmd/ledger-dev/runbook_catalogue_test.go fails when the
// generated file is stale. Run it through go generate:
//
//	go generate ./services/admin
//
// or directly (-out - prints the file instead of writing it):
//
//	go run ./services/admin/internal/runbookgen/main.go -in docs/runbooks.md -out services/admin/runbook_gen.go
//
// It is a build-ignored program run by file name, not a package: a tool of
// the repository, not one of the services' binaries.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	in := flag.String("in", "../../docs/runbooks.md", "the runbooks page to read")
	out := flag.String("out", "runbook_gen.go", `the Go file to write ("-": standard output)`)
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "runbookgen:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	md, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	entries, err := Parse(md)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	src, err := Render(entries)
	if err != nil {
		return err
	}
	if out == "-" {
		_, err = os.Stdout.Write(src)
		return err
	}
	return os.WriteFile(out, src, 0o644)
}

// Entry is one catalogued value: its heading and its parts, markdown kept as
// text (lines of a paragraph joined by one space).
type Entry struct {
	Kind, Value string
	// Summary is what stands between the heading and the first part (a
	// code's class, services and fate).
	Summary                     string
	Means, Confirm, Fix, Replay string
	// More is anything after the parts, paragraphs separated by a blank line.
	More string
}

// Anchor is the entry's anchor on the page and its catalogue key.
func (e Entry) Anchor() string { return e.Kind + "-" + e.Value }

var (
	heading = regexp.MustCompile("^### (code|class|skip|ingest): `([^`]+)`\\s*$")
	part    = regexp.MustCompile(`^- \*\*(Means|Confirm|Fix|Replay):\*\*\s*(.*)$`)
)

// Parse reads every "### <kind>: `<value>`" section of the page. Each needs
// its four parts (Means, Confirm, Fix, Replay), as the runbooks guard test
// requires; a value catalogued twice is an error.
func Parse(md []byte) ([]Entry, error) {
	var (
		entries []Entry
		cur     *Entry
		field   *string // the paragraph being continued
	)
	seen := map[string]bool{}
	finish := func() error {
		if cur == nil {
			return nil
		}
		for name, v := range map[string]string{"Means": cur.Means, "Confirm": cur.Confirm, "Fix": cur.Fix, "Replay": cur.Replay} {
			if v == "" {
				return fmt.Errorf("### %s: `%s` has no **%s:** part", cur.Kind, cur.Value, name)
			}
		}
		entries = append(entries, *cur)
		cur, field = nil, nil
		return nil
	}
	inFence := false
	for n, line := range strings.Split(strings.ReplaceAll(string(md), "\r\n", "\n"), "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if !inFence && strings.HasPrefix(line, "#") {
			if err := finish(); err != nil {
				return nil, err
			}
			m := heading.FindStringSubmatch(line)
			if m == nil {
				continue // another section: not catalogued
			}
			e := Entry{Kind: m[1], Value: m[2]}
			if seen[e.Anchor()] {
				return nil, fmt.Errorf("line %d: %s is catalogued twice", n+1, e.Anchor())
			}
			seen[e.Anchor()] = true
			cur = &e
			continue
		}
		if cur == nil {
			continue
		}
		text := strings.TrimSpace(line)
		switch m := part.FindStringSubmatch(line); {
		case text == "":
			field = nil
		case m != nil:
			field = map[string]*string{"Means": &cur.Means, "Confirm": &cur.Confirm, "Fix": &cur.Fix, "Replay": &cur.Replay}[m[1]]
			if *field != "" {
				return nil, fmt.Errorf("line %d: %s has two **%s:** parts", n+1, cur.Anchor(), m[1])
			}
			*field = strings.TrimSpace(m[2])
		case field != nil && (strings.HasPrefix(line, " ") || !strings.HasPrefix(line, "- ")):
			*field += " " + text
		case cur.Means == "":
			field = &cur.Summary
			*field = join(*field, text)
		default:
			field = &cur.More
			*field = join(*field, text)
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("no \"### code: `x`\" (class, skip, ingest) sections found")
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Anchor(), b.Anchor()) })
	return entries, nil
}

// join starts a new paragraph in s.
func join(s, text string) string {
	if s == "" {
		return text
	}
	return s + "\n\n" + text
}

// Render writes the generated Go file (gofmt'd): the map runbookEntries in
// package admin, whose type runbookEntry is declared in catalogue.go.
func Render(entries []Entry) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by runbookgen from docs/runbooks.md; DO NOT EDIT.\n")
	b.WriteString("// Regenerate with: go generate ./services/admin\n\n")
	b.WriteString("package admin\n\n")
	b.WriteString("// runbookEntries is docs/runbooks.md's catalogue, keyed by anchor.\n")
	b.WriteString("var runbookEntries = map[string]runbookEntry{\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "%s: {\n", strconv.Quote(e.Anchor()))
		for _, f := range [][2]string{{"Kind", e.Kind}, {"Value", e.Value}, {"Summary", e.Summary}, {"Means", e.Means},
			{"Confirm", e.Confirm}, {"Fix", e.Fix}, {"Replay", e.Replay}, {"More", e.More}} {
			if f[1] != "" {
				fmt.Fprintf(&b, "%s: %s,\n", f[0], strconv.Quote(f[1]))
			}
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n")
	return format.Source(b.Bytes())
}
