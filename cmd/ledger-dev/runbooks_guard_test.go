package main

// This file keeps docs/runbooks.md in step with the code, both ways. The list of
// error classes, error codes, skip reasons and ingest answer codes is generated
// from the production sources with go/ast, never kept by hand:
//
//   - every string constant under services/ and libs/ whose name starts with
//     Code, Class or Skip (codeX, classX, skipX when unexported);
//   - string literals given where a class, code or skip reason goes: the keys
//     Code/code/ErrorCode, Class/class/ErrorClass, SkipReason of any composite
//     literal (bus.Outcome{Class: "serde"}, retryable{code: "internal"}), and
//     the arguments of failf(class, code, …) and skipf(reason, …);
//   - ingest's error bodies: writeError(w, status, "code", …) and
//     errorBody{Error: "code"};
//   - the codes sage-writer derives from Sage's $dataCode (RecordInvalid →
//     record_invalid): the data codes sim/sage knows, each with the statuses Sage
//     answers it with (sageDataCodeStatuses, checked against sim/sage), run
//     through sagewriter.Classify itself.
//
// Each value needs a heading "### <kind>: `<value>`" (anchor #<kind>-<value>)
// whose entry says what it means, how to confirm it, how to fix it and how to
// replay, and names every service that produces it; and every such heading must
// name a value the code produces. The commands and metrics the runbooks name are
// checked too: every `ledgerctl GROUP COMMAND --flag` against ledgerctl's
// command table, every ledger_* metric against the metrics the services
// register, every ledger.* span attribute against the keys libs and services
// declare.

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/ledgersync/ledger/libs/sage"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
)

// Runbook entry kinds: the word before the colon of an entry heading.
const (
	kindClass  = "class"  // error class of a failed run or dead letter
	kindCode   = "code"   // error code of a failed run, dead letter or retry
	kindSkip   = "skip"   // skip reason of a skipped run
	kindIngest = "ingest" // error code in ingest's JSON answer to Magento
)

var runbookKinds = []string{kindClass, kindCode, kindSkip, kindIngest}

// sageDataCodeStatuses are the HTTP statuses Sage answers each $dataCode with
// (shared/reference/sage-v3.1.md, as sim/sage reproduces them: RecordNotFound
// also comes inside a 422 array for a missing ledger account or artefact). The
// test fails when sim/sage gains or loses a data code until this table says
// which statuses it comes with.
var sageDataCodeStatuses = map[string][]int{
	"AuthorizationFailure":        {401, 403},
	"BadRequest":                  {400},
	"IdempotencyResourceMismatch": {422},
	"MultiUserAccessDenied":       {403},
	"RecordInvalid":               {400, 422},
	"RecordNotFound":              {404, 422},
	"TooManyRequests":             {429},
	"UnexpectedError":             {500},
	"UnsupportedMediaType":        {415},
}

// runbookCode is one value the code produces.
type runbookCode struct {
	Kind, Value string
	Stages      []string // the services that produce it (mapper, sage-writer, …); none for libs
	Where       []string // file:line of each place found
}

func (c *runbookCode) key() string { return c.Kind + ": " + c.Value }

// runbookCodes is the generated list, by key.
type runbookCodes map[string]*runbookCode

func (cs runbookCodes) add(kind, value, stage, where string) {
	k := kind + ": " + value
	c := cs[k]
	if c == nil {
		c = &runbookCode{Kind: kind, Value: value}
		cs[k] = c
	}
	if stage != "" && !slices.Contains(c.Stages, stage) {
		c.Stages = append(c.Stages, stage)
		slices.Sort(c.Stages)
	}
	if !slices.Contains(c.Where, where) {
		c.Where = append(c.Where, where)
	}
}

var snakeValue = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// collectRunbookCodes scans the production Go sources under services/ and libs/
// of the repository at root.
func collectRunbookCodes(root string) (runbookCodes, []string, error) {
	codes := runbookCodes{}
	var problems []string
	fset := token.NewFileSet()
	for _, top := range []string{"services", "libs"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := e.Name()
			if e.IsDir() {
				if name == "testdata" || name == "devstack" || strings.HasPrefix(name, ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || strings.HasSuffix(name, ".pb.go") {
				return nil
			}
			rel, _ := filepath.Rel(root, p)
			rel = filepath.ToSlash(rel)
			stage := ""
			if parts := strings.Split(rel, "/"); parts[0] == "services" && len(parts) > 2 {
				stage = parts[1]
			}
			f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			problems = append(problems, scanRunbookFile(fset, root, f, stage, codes)...)
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	p, err := addSageDataCodes(root, codes)
	problems = append(problems, p...)
	return codes, problems, err
}

// scanRunbookFile adds what one file produces.
func scanRunbookFile(fset *token.FileSet, root string, f *ast.File, stage string, codes runbookCodes) []string {
	var problems []string
	pos := func(n ast.Node) string {
		p := fset.Position(n.Pos())
		rel, _ := filepath.Rel(root, p.Filename)
		return filepath.ToSlash(rel) + ":" + strconv.Itoa(p.Line)
	}
	// lit records a literal given where a kind goes; anything but a string
	// literal (a constant's name) is covered by the constant scan.
	lit := func(kind string, e ast.Expr) {
		bl, ok := e.(*ast.BasicLit)
		if !ok || bl.Kind != token.STRING {
			return
		}
		v, err := strconv.Unquote(bl.Value)
		if err != nil || !snakeValue.MatchString(v) {
			problems = append(problems, fmt.Sprintf("%s: %s %s is not a snake_case value", pos(e), kind, bl.Value))
			return
		}
		codes.add(kind, v, stage, pos(e))
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GenDecl:
			if n.Tok != token.CONST {
				return true
			}
			for _, spec := range n.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					kind := constKind(id.Name)
					if kind == "" {
						continue
					}
					if i >= len(vs.Values) {
						problems = append(problems, fmt.Sprintf("%s: constant %s has no value the scan can read", pos(id), id.Name))
						continue
					}
					if bl, ok := vs.Values[i].(*ast.BasicLit); ok && bl.Kind != token.STRING {
						continue // not a string constant (an iota, a number)
					}
					if _, ok := vs.Values[i].(*ast.BasicLit); !ok {
						problems = append(problems, fmt.Sprintf("%s: constant %s is not a string literal; the runbook scan cannot read it", pos(id), id.Name))
						continue
					}
					lit(kind, vs.Values[i])
				}
			}
		case *ast.CompositeLit:
			errorBody := false
			if id, ok := n.Type.(*ast.Ident); ok && id.Name == "errorBody" && stage == "ingest" {
				errorBody = true
			}
			for _, el := range n.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, ok := kv.Key.(*ast.Ident)
				if !ok {
					continue
				}
				switch key.Name {
				case "Code", "code", "ErrorCode":
					lit(kindCode, kv.Value)
				case "Class", "class", "ErrorClass":
					lit(kindClass, kv.Value)
				case "SkipReason":
					lit(kindSkip, kv.Value)
				case "Error":
					if errorBody {
						lit(kindIngest, kv.Value)
					}
				}
			}
		case *ast.CallExpr:
			fn, ok := n.Fun.(*ast.Ident)
			if !ok {
				return true
			}
			switch {
			case fn.Name == "failf" && len(n.Args) >= 2:
				lit(kindClass, n.Args[0])
				lit(kindCode, n.Args[1])
			case fn.Name == "skipf" && len(n.Args) >= 1:
				lit(kindSkip, n.Args[0])
			case fn.Name == "writeError" && len(n.Args) >= 3 && stage == "ingest":
				lit(kindIngest, n.Args[2])
			}
		}
		return true
	})
	return problems
}

// constKind is the kind a constant's name declares: CodeX, ClassX, SkipX (or
// codeX, classX, skipX), else "".
func constKind(name string) string {
	for _, k := range []struct{ prefix, kind string }{{"Code", kindCode}, {"Class", kindClass}, {"Skip", kindSkip}} {
		for _, p := range []string{k.prefix, strings.ToLower(k.prefix)} {
			rest, ok := strings.CutPrefix(name, p)
			if ok && rest != "" && unicode.IsUpper([]rune(rest)[0]) {
				return k.kind
			}
		}
	}
	return ""
}

// addSageDataCodes adds what sagewriter.Classify makes of every Sage data code
// sim/sage knows, at the statuses Sage answers it with.
func addSageDataCodes(root string, codes runbookCodes) ([]string, error) {
	known, err := simDataCodes(filepath.Join(root, "sim", "sage"))
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, dc := range known {
		if _, ok := sageDataCodeStatuses[dc]; !ok {
			problems = append(problems, fmt.Sprintf("sim/sage knows the Sage data code %s: add it with its HTTP statuses to sageDataCodeStatuses (runbooks_guard_test.go)", dc))
		}
	}
	for _, dc := range slices.Sorted(maps.Keys(sageDataCodeStatuses)) {
		if !slices.Contains(known, dc) {
			problems = append(problems, fmt.Sprintf("sageDataCodeStatuses names %s, which sim/sage no longer knows: remove it", dc))
			continue
		}
		for _, status := range sageDataCodeStatuses[dc] {
			d := sagewriter.Classify(&sage.APIError{Method: "POST", Path: "/sales_invoices", Status: status,
				Items: []sage.ErrorItem{{Severity: "error", DataCode: dc, Message: "m"}}})
			where := fmt.Sprintf("sagewriter.Classify(%s, HTTP %d)", dc, status)
			codes.add(kindCode, d.Code, "sage-writer", where)
			codes.add(kindClass, d.Class, "sage-writer", where)
		}
	}
	return problems, nil
}

// simDataCodes are the values of sim/sage's Code* constants: the Sage data
// codes the simulator answers with.
func simDataCodes(dir string) ([]string, error) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if !strings.HasPrefix(id.Name, "Code") || i >= len(vs.Values) {
						continue
					}
					if bl, ok := vs.Values[i].(*ast.BasicLit); ok && bl.Kind == token.STRING {
						v, _ := strconv.Unquote(bl.Value)
						out = append(out, v)
					}
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// runbookEntry is one "### kind: `value`" section of the runbooks.
type runbookEntry struct {
	Kind, Value string
	Line        int
	Body        string
}

var (
	runbookHeading = regexp.MustCompile("^### ([a-z]+): `([^`]*)`\\s*$")
	// runbookLooksLikeEntry catches a heading meant as an entry but written
	// in another shape ("### `code`", "### Code: x").
	runbookLooksLikeEntry = regexp.MustCompile("^#{2,6} (?:`|(?i:class|code|skip|ingest)\\b\\s*:)")
	runbookAnyHeading     = regexp.MustCompile(`^#{1,3} `)
)

// parseRunbooks returns the entries of doc and the headings it cannot read.
func parseRunbooks(doc string) ([]runbookEntry, []string) {
	var entries []runbookEntry
	var problems []string
	var cur *runbookEntry
	var body strings.Builder
	flush := func() {
		if cur != nil {
			cur.Body = body.String()
			entries = append(entries, *cur)
			cur = nil
		}
		body.Reset()
	}
	fenced := false
	for i, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if !fenced && runbookAnyHeading.MatchString(line) {
			flush()
			if m := runbookHeading.FindStringSubmatch(line); m != nil {
				if !slices.Contains(runbookKinds, m[1]) {
					problems = append(problems, fmt.Sprintf("line %d: %q: the kind must be one of %v", i+1, line, runbookKinds))
					continue
				}
				cur = &runbookEntry{Kind: m[1], Value: m[2], Line: i + 1}
				continue
			}
		}
		if !fenced && runbookLooksLikeEntry.MatchString(line) {
			problems = append(problems, fmt.Sprintf("line %d: %q looks like an entry heading: write it \"### <kind>: `<value>`\" with a kind of %v", i+1, line, runbookKinds))
		}
		if cur != nil {
			body.WriteString(line)
			body.WriteByte('\n')
		}
	}
	flush()
	return entries, problems
}

// runbookParts are the labels every entry has.
var runbookParts = []string{"**Means:**", "**Confirm:**", "**Fix:**", "**Replay:**"}

// checkRunbooks compares the generated list with the entries of doc, both ways.
func checkRunbooks(codes runbookCodes, doc string) []string {
	entries, problems := parseRunbooks(doc)
	seen := map[string]int{}
	for _, e := range entries {
		k := e.Kind + ": " + e.Value
		if first, dup := seen[k]; dup {
			problems = append(problems, fmt.Sprintf("line %d: %s has a second entry (the first is at line %d)", e.Line, k, first))
			continue
		}
		seen[k] = e.Line
		c, ok := codes[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("line %d: entry %q names a %s the code does not produce: remove it or fix its name", e.Line, k, e.Kind))
			continue
		}
		for _, part := range runbookParts {
			if !strings.Contains(e.Body, part) {
				problems = append(problems, fmt.Sprintf("line %d: entry %q has no %s part", e.Line, k, part))
			}
		}
		for _, stage := range c.Stages {
			if !regexp.MustCompile(`(^|[^a-z-])` + regexp.QuoteMeta(stage) + `([^a-z-]|$)`).MatchString(e.Body) {
				problems = append(problems, fmt.Sprintf("line %d: entry %q does not name %s, which produces it (%s)", e.Line, k, stage, strings.Join(c.Where, ", ")))
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(codes)) {
		if _, ok := seen[k]; !ok {
			c := codes[k]
			problems = append(problems, fmt.Sprintf("no runbook entry for %s (produced at %s): add a heading \"### %s: `%s`\"",
				k, strings.Join(c.Where, ", "), c.Kind, c.Value))
		}
	}
	return problems
}

// ledgerctlCommands reads ledgerctl's command table from its source: the flags
// each "group command" accepts (from its synopsis), and the global flags.
func ledgerctlCommands(dir string) (map[string][]string, []string, error) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	tables := map[string][][2]string{} // var name → (command name, args)
	groups := map[string]string{}      // group name → var name
	var globals []string
	flagRE := regexp.MustCompile(`--([a-z][a-z-]*)`)
	// str is a string literal's value, or a concatenation of literals' (a
	// long synopsis is split over lines with +).
	var str func(e ast.Expr) string
	str = func(e ast.Expr) string {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				s, _ := strconv.Unquote(e.Value)
				return s
			}
		case *ast.BinaryExpr:
			if e.Op == token.ADD {
				return str(e.X) + str(e.Y)
			}
		case *ast.ParenExpr:
			return str(e.X)
		}
		return ""
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, nil, err
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					vs, ok := spec.(*ast.ValueSpec)
					if !ok || len(vs.Names) != 1 || len(vs.Values) != 1 {
						continue
					}
					cl, ok := vs.Values[0].(*ast.CompositeLit)
					if !ok {
						continue
					}
					at, ok := cl.Type.(*ast.ArrayType)
					if !ok {
						continue
					}
					elt, _ := at.Elt.(*ast.Ident)
					switch {
					case elt != nil && elt.Name == "command":
						for _, el := range cl.Elts {
							row, ok := el.(*ast.CompositeLit)
							if !ok {
								continue
							}
							var name, args string
							for _, f := range row.Elts {
								if kv, ok := f.(*ast.KeyValueExpr); ok {
									switch kv.Key.(*ast.Ident).Name {
									case "name":
										name = str(kv.Value)
									case "args":
										args = str(kv.Value)
									}
								}
							}
							tables[vs.Names[0].Name] = append(tables[vs.Names[0].Name], [2]string{name, args})
						}
					case elt != nil && elt.Name == "commandGroup":
						for _, el := range cl.Elts {
							row, ok := el.(*ast.CompositeLit)
							if !ok || len(row.Elts) != 2 {
								continue
							}
							if id, ok := row.Elts[1].(*ast.Ident); ok {
								groups[str(row.Elts[0])] = id.Name
							}
						}
					}
				}
			case *ast.FuncDecl:
				if d.Name.Name != "register" || d.Recv == nil {
					continue
				}
				ast.Inspect(d, func(n ast.Node) bool {
					if call, ok := n.(*ast.CallExpr); ok && len(call.Args) >= 2 {
						if s := str(call.Args[1]); s != "" {
							globals = append(globals, s)
						}
					}
					return true
				})
			}
		}
	}
	cmds := map[string][]string{}
	for g, v := range groups {
		for _, c := range tables[v] {
			var flags []string
			for _, m := range flagRE.FindAllStringSubmatch(c[1], -1) {
				flags = append(flags, m[1])
			}
			cmds[g+" "+c[0]] = flags
		}
	}
	return cmds, globals, nil
}

// codeSpans are the inline code spans and fenced code lines of a Markdown doc.
func codeSpans(doc string) []string {
	var out []string
	fenced := false
	span := regexp.MustCompile("`([^`\n]+)`")
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			out = append(out, line)
			continue
		}
		for _, m := range span.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// checkLedgerctlMentions checks every "ledgerctl GROUP COMMAND --flag…" in the
// code of doc against the command table.
func checkLedgerctlMentions(doc string, cmds map[string][]string, globals []string) []string {
	var problems []string
	word := regexp.MustCompile(`^[a-z][a-z-]*$`)
	flagRE := regexp.MustCompile(`(?:^|\s)--([a-z][a-z-]*)`)
	for _, s := range codeSpans(doc) {
		for _, part := range strings.Split(s, "ledgerctl ")[1:] {
			// One invocation runs to the end of the span or to a shell
			// separator.
			if i := strings.IndexAny(part, "|;&#"); i >= 0 {
				part = part[:i]
			}
			f := strings.Fields(part)
			if len(f) < 2 || !word.MatchString(f[0]) || !word.MatchString(f[1]) {
				problems = append(problems, fmt.Sprintf("%q: name the command as ledgerctl GROUP COMMAND (global flags after it)", "ledgerctl "+part))
				continue
			}
			name := f[0] + " " + f[1]
			flags, ok := cmds[name]
			if !ok {
				problems = append(problems, fmt.Sprintf("%q: ledgerctl has no command %q", "ledgerctl "+part, name))
				continue
			}
			for _, m := range flagRE.FindAllStringSubmatch(part, -1) {
				if !slices.Contains(flags, m[1]) && !slices.Contains(globals, m[1]) {
					problems = append(problems, fmt.Sprintf("%q: ledgerctl %s has no flag --%s", "ledgerctl "+part, name, m[1]))
				}
			}
		}
	}
	return problems
}

// registeredMetrics are the ledger_* metric names production code registers
// (Name: "ledger_…", or prometheus.NewDesc("ledger_…" for a collector's).
func registeredMetrics(root string) (map[string]bool, error) {
	out := map[string]bool{}
	re := regexp.MustCompile(`(?:Name:\s*|NewDesc\()"(ledger_[a-z0-9_]+)"`)
	for _, top := range []string{"services", "libs"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllStringSubmatch(string(src), -1) {
				out[m[1]] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// notMetrics are ledger_* words in the runbooks that are no metric.
var notMetrics = []string{"ledger_accounts"}

// checkMetricMentions checks every ledger_* word in the code of doc against the
// registered metrics (a histogram's _bucket, _sum and _count included).
func checkMetricMentions(doc string, metrics map[string]bool) []string {
	var problems []string
	re := regexp.MustCompile(`\bledger_[a-z0-9_]+`)
	for _, s := range codeSpans(doc) {
		for _, m := range re.FindAllString(s, -1) {
			base := m
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(m, suf); ok && metrics[b] {
					base = b
				}
			}
			if !metrics[base] && !slices.Contains(notMetrics, m) {
				problems = append(problems, fmt.Sprintf("%q names the metric %s, which no service registers", s, m))
			}
		}
	}
	return problems
}

// traceAttributes are the span attribute keys production code declares
// (attribute.Key("…")).
func traceAttributes(root string) (map[string]bool, error) {
	out := map[string]bool{}
	re := regexp.MustCompile(`attribute\.Key\("([a-z0-9_.]+)"\)`)
	for _, top := range []string{"services", "libs"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			src, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range re.FindAllStringSubmatch(string(src), -1) {
				out[m[1]] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkTraceMentions checks every code span of doc that is exactly a ledger.*
// attribute name (lower case, no subject wildcards) against the declared keys.
func checkTraceMentions(doc string, attrs map[string]bool) []string {
	var problems []string
	re := regexp.MustCompile(`^ledger\.[a-z_]+(\.[a-z_]+)*$`)
	for _, s := range codeSpans(doc) {
		if re.MatchString(s) && !attrs[s] {
			problems = append(problems, fmt.Sprintf("%q names a trace attribute no code declares", s))
		}
	}
	return problems
}

// TestRunbooksCoverEveryCode is the guard: docs/runbooks.md has one entry per
// class, code, skip reason and ingest answer the code produces, and no other;
// the ledgerctl commands and metrics it and docs/dead-letters.md name exist.
func TestRunbooksCoverEveryCode(t *testing.T) {
	codes, problems, err := collectRunbookCodes(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	count := map[string]int{}
	for _, c := range codes {
		count[c.Kind]++
	}
	// A scan that finds little went blind (the code moved to a shape it does
	// not recognise); it does not mean the runbooks are complete.
	if count[kindClass] < 9 || count[kindCode] < 50 || count[kindSkip] < 9 || count[kindIngest] < 6 {
		t.Fatalf("the scan found %v: does it still recognise the code?", count)
	}
	t.Logf("generated list: %d classes, %d codes, %d skip reasons, %d ingest answers (%d entries)",
		count[kindClass], count[kindCode], count[kindSkip], count[kindIngest], len(codes))
	if testing.Verbose() {
		for _, k := range slices.Sorted(maps.Keys(codes)) {
			c := codes[k]
			t.Logf("%-45s %-32s %s", k, strings.Join(c.Stages, ","), strings.Join(c.Where, " "))
		}
	}
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkRunbooks(codes, string(doc)) {
		t.Error("docs/runbooks.md " + p)
	}

	cmds, globals, err := ledgerctlCommands(filepath.Join(repoRoot, "cmd", "ledgerctl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) < 15 || !slices.Contains(globals, "json") || !slices.Contains(cmds["runs list"], "magento-id") {
		t.Fatalf("read %d ledgerctl commands and global flags %v (runs list: %v): does the scan still recognise the command table?",
			len(cmds), globals, cmds["runs list"])
	}
	metrics, err := registeredMetrics(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if len(metrics) < 15 {
		t.Fatalf("found %d ledger_* metrics: does the scan still recognise their registration?", len(metrics))
	}
	attrs, err := traceAttributes(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"runbooks.md", "dead-letters.md"} {
		src, err := os.ReadFile(filepath.Join(repoRoot, "docs", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range checkLedgerctlMentions(string(src), cmds, globals) {
			t.Errorf("docs/%s: %s", name, p)
		}
		for _, p := range checkMetricMentions(string(src), metrics) {
			t.Errorf("docs/%s: %s", name, p)
		}
		for _, p := range checkTraceMentions(string(src), attrs) {
			t.Errorf("docs/%s: %s", name, p)
		}
	}

	// The guard itself: each kind of drift is reported.
	t.Run("guard fails", func(t *testing.T) {
		with := maps.Clone(codes)
		with.add(kindCode, "fake_code_for_the_guard", "mapper", "runbooks_guard_test.go")
		if !anyContains(checkRunbooks(with, string(doc)), "no runbook entry for code: fake_code_for_the_guard") {
			t.Error("a code without an entry was not reported")
		}

		entries, _ := parseRunbooks(string(doc))
		if len(entries) == 0 {
			t.Fatal("no entries parsed")
		}
		victim := entries[len(entries)/2]
		heading := fmt.Sprintf("### %s: `%s`\n", victim.Kind, victim.Value)
		without := strings.Replace(string(doc), heading, "### Something else\n", 1)
		if !anyContains(checkRunbooks(codes, without), "no runbook entry for "+victim.Kind+": "+victim.Value) {
			t.Errorf("a doc without the entry for %s: %s was not reported", victim.Kind, victim.Value)
		}

		extra := string(doc) + "\n### code: `no_such_code`\n\n- **Means:** x\n- **Confirm:** x\n- **Fix:** x\n- **Replay:** x\n"
		if !anyContains(checkRunbooks(codes, extra), "names a code the code does not produce") {
			t.Error("an entry for a code that does not exist was not reported")
		}

		malformed := string(doc) + "\n### `record_invalid`\n"
		if !anyContains(checkRunbooks(codes, malformed), "looks like an entry heading") {
			t.Error("a malformed entry heading was not reported")
		}

		if !anyContains(checkLedgerctlMentions("`ledgerctl dlq drain --tenant T`", cmds, globals), `no command "dlq drain"`) ||
			!anyContains(checkLedgerctlMentions("`ledgerctl dlq replay --all`", cmds, globals), "has no flag --all") {
			t.Error("a ledgerctl command or flag that does not exist was not reported")
		}
		if !anyContains(checkMetricMentions("`ledger_dlq_depth`", metrics), "no service registers") {
			t.Error("a metric that does not exist was not reported")
		}
		if !anyContains(checkTraceMentions("`ledger.error.reason`", attrs), "no code declares") {
			t.Error("a trace attribute that does not exist was not reported")
		}
	})
}

func anyContains(list []string, sub string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, sub) })
}
