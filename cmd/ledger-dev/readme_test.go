package main

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestReadmeDocumentsEverySetting keeps README.md's configuration table and the
// code in step, both ways: every variable production code in any workspace
// module reads (env.Reader or os.Getenv, found by parsing the source) has a row
// with the binaries that read it and, where the code states a constant default,
// that default; and every row names a variable something reads.
func TestReadmeDocumentsEverySetting(t *testing.T) {
	modules, err := workspaceModules(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	scan, err := scanEnv(repoRoot, modules)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range scan.Problems {
		t.Error(p)
	}
	// A scan that finds little means the scanner went blind (code moved to a
	// shape it does not recognise), not that the table is right.
	if len(scan.Vars) < 50 || len(scan.Services) != 6 {
		t.Fatalf("found %d variables and services %v: does the scanner still recognise the code?", len(scan.Vars), scan.Services)
	}
	if testing.Verbose() {
		for _, name := range slices.Sorted(maps.Keys(scan.Vars)) {
			v := scan.Vars[name]
			var reads []string
			for _, r := range v.Reads {
				def := "no constant default"
				if r.HasDefault {
					def = "default " + strconv.Quote(formatDefault(r.Kind, r.Default))
				}
				reads = append(reads, fmt.Sprintf("%s (%s, %s)", r.Pos, r.Kind, def))
			}
			t.Logf("%s used by %s: %s", name, strings.Join(collapseServices(v.UsedBy, scan.Services), ", "), strings.Join(reads, "; "))
		}
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := parseConfigTable(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkConfigTable(scan, rows) {
		t.Error("README.md " + p)
	}

	// The guard fails on each kind of drift.
	edit := func(t *testing.T, name string, change func(r *configRow)) []configRow {
		t.Helper()
		out := slices.Clone(rows)
		for i, r := range out {
			if slices.Contains(r.Names, name) {
				r.Names, r.UsedBy, r.Defaults = slices.Clone(r.Names), slices.Clone(r.UsedBy), slices.Clone(r.Defaults)
				change(&r)
				out[i] = r
				return out
			}
		}
		t.Fatalf("no row for %s", name)
		return nil
	}
	for _, tc := range []struct {
		name string
		rows func(t *testing.T) []configRow
		want string
	}{
		{"an undocumented variable", func(t *testing.T) []configRow {
			return edit(t, "MAPPER_WORKERS", func(r *configRow) { r.Names = []string{"MAPPER_WORKERZ"} })
		}, "has no row for MAPPER_WORKERS (read at services/mapper/config.go:"},
		{"a stale row", func(t *testing.T) []configRow {
			return append(slices.Clone(rows), configRow{Line: 999, Names: []string{"LEDGER_GONE"}, UsedBy: []string{"ingest"}})
		}, "line 999: LEDGER_GONE is read nowhere"},
		{"a wrong default", func(t *testing.T) []configRow {
			return edit(t, "WRITER_WORKERS", func(r *configRow) { r.Defaults = []string{"17"} })
		}, "WRITER_WORKERS: default `17`, but services/sage-writer/config.go:"},
		{"a missing default", func(t *testing.T) []configRow {
			return edit(t, "INGEST_DEDUP_WINDOW", func(r *configRow) { r.Defaults = nil })
		}, "INGEST_DEDUP_WINDOW: no default, but"},
		{"a default the code does not have", func(t *testing.T) []configRow {
			return edit(t, "ADMIN_TOKEN", func(r *configRow) { r.Defaults = []string{"secret"} })
		}, "ADMIN_TOKEN: default `secret`, but services/admin/config.go:"},
		{"a wrong used-by", func(t *testing.T) []configRow {
			return edit(t, "INGEST_ADDR", func(r *configRow) { r.UsedBy = []string{"ingest", "mapper"} })
		}, "INGEST_ADDR: used by ingest, mapper; the code: ingest"},
		{"a shared setting not marked for ledger-dev", func(t *testing.T) []configRow {
			return edit(t, "LEDGER_NATS_URL", func(r *configRow) { r.UsedBy = []string{"all services"} })
		}, "LEDGER_NATS_URL: used by all services; the code: all services, ledger-dev"},
		{"a duplicate row", func(t *testing.T) []configRow {
			r := edit(t, "MAPPER_ADDR", func(*configRow) {})
			return append(r, configRow{Line: 998, Names: []string{"MAPPER_ADDR"}, UsedBy: []string{"mapper"}, Defaults: []string{"127.0.0.1:8083"}})
		}, "line 998: MAPPER_ADDR has a second row"},
	} {
		t.Run("fails on "+tc.name, func(t *testing.T) {
			got := checkConfigTable(scan, tc.rows(t))
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Fatalf("want a problem containing %q, got:\n%s", tc.want, strings.Join(got, "\n"))
			}
		})
	}
}

// TestEnvScanFindsReads runs the scanner over a small workspace: a read through
// a constant name, a default from a constant of another package, the used-by
// of a library read by two binaries and of a read only tests reach, and the
// drift the table check reports.
func TestEnvScanFindsReads(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"go.work":    "go 1.26.0\n\nuse (\n\t./app // the only module\n)\n",
		"app/go.mod": "module example.com/app\n\ngo 1.26.0\n",
		"app/libs/env/env.go": `package env
type Reader struct{}
func (r *Reader) Duration(name string, def int64) int64 { return def }
func (r *Reader) String(name, def string) string { return def }
`,
		"app/libs/defaults/defaults.go": "package defaults\n\nimport \"time\"\n\nconst Wait = 90 * time.Second\n",
		"app/libs/conf/conf.go": `package conf

import (
	"os"

	"example.com/app/libs/defaults"
	"example.com/app/libs/env"
)

const urlVar = "DEMO_URL"

func Load() (string, int64) {
	r := &env.Reader{}
	return os.Getenv(urlVar), r.Duration("DEMO_WAIT", defaults.Wait)
}

func TestOnly() string { var r env.Reader; return r.String("DEMO_TEST_ONLY", "") }
`,
		"app/services/one/cmd/one/main.go": "package main\n\nimport \"example.com/app/libs/conf\"\n\nfunc main() { conf.Load() }\n",
		"app/cmd/two/main.go":              "package main\n\nimport \"example.com/app/libs/conf\"\n\nvar load = conf.Load\n\nfunc main() { load() }\n",
		"app/libs/conf/conf_test.go":       "package conf\n\nimport \"testing\"\n\nfunc TestX(t *testing.T) { TestOnly() }\n",
	}
	for name, src := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	modules, err := workspaceModules(root)
	if err != nil {
		t.Fatal(err)
	}
	scan, err := scanEnv(root, modules)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for name, v := range scan.Vars {
		def := "-"
		for _, r := range v.Reads {
			if r.HasDefault {
				def = formatDefault(r.Kind, r.Default)
			}
		}
		got[name] = strings.Join(v.UsedBy, ",") + " " + def
	}
	want := map[string]string{"DEMO_URL": "one,two -", "DEMO_WAIT": "one,two 1m30s", "DEMO_TEST_ONLY": "tests "}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(scan.Problems) > 0 || !slices.Equal(scan.Services, []string{"one"}) {
		t.Fatalf("scan: %v (problems %v, services %v), want %v", got, scan.Problems, scan.Services, want)
	}

	rows, err := parseConfigTable("## Configuration\n\n| variable | used by | default | meaning |\n|---|---|---|---|\n" +
		"| `DEMO_URL`, `DEMO_WAIT` | all services, two | —, `1m` | x |\n| `DEMO_TEST_ONLY` | tests | — | y |\n")
	if err != nil {
		t.Fatal(err)
	}
	problems := checkConfigTable(scan, rows)
	if len(problems) != 1 || !strings.Contains(problems[0], "DEMO_WAIT: default `1m`, but app/libs/conf/conf.go:14 states 1m30s") {
		t.Fatalf("want one problem, DEMO_WAIT's default, got %q", problems)
	}

	// A read the scan cannot name is a problem, not a silent gap.
	dyn := "package conf\n\nimport \"os\"\n\nfunc Dynamic(name string) string { return os.Getenv(name) }\n"
	if err := os.WriteFile(filepath.Join(root, "app/libs/conf/dynamic.go"), []byte(dyn), 0o644); err != nil {
		t.Fatal(err)
	}
	if scan, err = scanEnv(root, modules); err != nil {
		t.Fatal(err)
	}
	if want := "app/libs/conf/dynamic.go:5: os.Getenv of a name that is not a constant"; !slices.Contains(scan.Problems, want) {
		t.Fatalf("problems %q, want %q", scan.Problems, want)
	}
}

// configRow is one row of README.md's configuration table: the variables it
// names, who uses them and their defaults (one per variable, "" for none; nil
// when none has one).
type configRow struct {
	Line     int
	Names    []string
	UsedBy   []string
	Defaults []string
}

var backquoted = regexp.MustCompile("`([^`]*)`")

// parseConfigTable reads the first table under "## Configuration".
func parseConfigTable(readme string) ([]configRow, error) {
	lines := strings.Split(readme, "\n")
	start := slices.Index(lines, "## Configuration")
	if start < 0 {
		return nil, fmt.Errorf("README.md has no \"## Configuration\" section")
	}
	var rows []configRow
	var col map[string]int
	for i := start + 1; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(l, "|") {
			if col != nil {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		switch {
		case col == nil:
			col = map[string]int{}
			for j, c := range cells {
				col[c] = j
			}
			for _, c := range []string{"variable", "used by", "default"} {
				if _, ok := col[c]; !ok {
					return nil, fmt.Errorf("line %d: the configuration table has no %q column", i+1, c)
				}
			}
		case strings.HasPrefix(cells[0], "---"):
		default:
			r := configRow{Line: i + 1}
			for _, m := range backquoted.FindAllStringSubmatch(cells[col["variable"]], -1) {
				r.Names = append(r.Names, m[1])
			}
			for _, u := range strings.Split(cells[col["used by"]], ",") {
				r.UsedBy = append(r.UsedBy, strings.TrimSpace(u))
			}
			r.Defaults = parseDefaults(cells[col["default"]], len(r.Names))
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("README.md's configuration section has no table")
	}
	return rows, nil
}

// parseDefaults reads a default cell: no value in backquotes means no variable
// of the row has a default; a row of several variables gives one default per
// variable, separated by commas ("—" or prose for none).
func parseDefaults(cell string, names int) []string {
	values := backquoted.FindAllStringSubmatch(cell, -1)
	if len(values) == 0 {
		return nil
	}
	if names <= 1 {
		var out []string
		for _, v := range values {
			out = append(out, v[1])
		}
		return out
	}
	var out []string
	for part := range strings.SplitSeq(cell, ",") {
		v := ""
		if m := backquoted.FindStringSubmatch(part); m != nil {
			v = m[1]
		}
		out = append(out, v)
	}
	return out
}

// checkConfigTable returns every disagreement between the table and the scan.
func checkConfigTable(scan *envScan, rows []configRow) []string {
	var problems []string
	documented := map[string]int{}
	for _, r := range rows {
		if len(r.Defaults) > 0 && len(r.Defaults) != len(r.Names) {
			problems = append(problems, fmt.Sprintf("line %d: %d variables but %d defaults: give one per variable (— for none) or split the row",
				r.Line, len(r.Names), len(r.Defaults)))
			continue
		}
		usedBy := expandServices(r.UsedBy, scan.Services)
		for i, name := range r.Names {
			if prev, dup := documented[name]; dup {
				problems = append(problems, fmt.Sprintf("line %d: %s has a second row (first on line %d)", r.Line, name, prev))
				continue
			}
			documented[name] = r.Line
			v := scan.Vars[name]
			if v == nil {
				problems = append(problems, fmt.Sprintf("line %d: %s is read nowhere: remove the row, or the code lost a setting", r.Line, name))
				continue
			}
			if !slices.Equal(usedBy, v.UsedBy) {
				problems = append(problems, fmt.Sprintf("line %d: %s: used by %s; the code: %s",
					r.Line, name, strings.Join(r.UsedBy, ", "), strings.Join(collapseServices(v.UsedBy, scan.Services), ", ")))
			}
			def := ""
			if len(r.Defaults) > 0 {
				def = r.Defaults[i]
			}
			hasDef := def != ""
			for _, rd := range v.Reads {
				if !rd.HasDefault {
					continue // os.Getenv, or a default that is not a constant
				}
				empty := formatDefault(rd.Kind, rd.Default) == "" && rd.Kind == "String"
				switch {
				case empty && hasDef:
					problems = append(problems, fmt.Sprintf("line %d: %s: default `%s`, but %s states none", r.Line, name, def, rd.Pos))
				case !empty && !hasDef:
					problems = append(problems, fmt.Sprintf("line %d: %s: no default, but %s states %s", r.Line, name, rd.Pos, formatDefault(rd.Kind, rd.Default)))
				case !empty && !sameDefault(rd.Kind, rd.Default, def):
					problems = append(problems, fmt.Sprintf("line %d: %s: default `%s`, but %s states %s", r.Line, name, def, rd.Pos, formatDefault(rd.Kind, rd.Default)))
				}
			}
		}
	}
	var missing []string
	for name, v := range scan.Vars {
		if _, ok := documented[name]; !ok {
			missing = append(missing, fmt.Sprintf("has no row for %s (read at %s, used by %s)",
				name, v.Reads[0].Pos, strings.Join(collapseServices(v.UsedBy, scan.Services), ", ")))
		}
	}
	slices.Sort(missing)
	return append(problems, missing...)
}

// expandServices turns "all services" into the services, sorted.
func expandServices(users, services []string) []string {
	var out []string
	for _, u := range users {
		if u == "all services" {
			out = append(out, services...)
		} else {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// collapseServices writes users the way the table does: "all services" when
// every service is among them.
func collapseServices(users, services []string) []string {
	var out []string
	all := len(services) > 0
	for _, s := range services {
		all = all && slices.Contains(users, s)
	}
	if all {
		out = append(out, "all services")
	}
	for _, u := range users {
		if !all || !slices.Contains(services, u) {
			out = append(out, u)
		}
	}
	return out
}
