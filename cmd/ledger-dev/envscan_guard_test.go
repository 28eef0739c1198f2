package main

// This file finds, from the Go source of every workspace module, each
// environment variable production code reads: the literal name, the default
// the code states (when it is a constant), and the binaries that reach the read.
// readme_test.go checks README.md's configuration table against it.
//
// It parses with go/ast and resolves just enough by hand to stay dependency-free:
// constants (in the package or another workspace package, time units), and a
// call graph in which a function is reached when it is named (called or passed
// as a value). Without types a method call x.M cannot be pinned to one type, so
// it reaches every method M of the workspace, calls through interfaces
// included: "used by" may list a binary too many, never miss one.

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// envRead is one place where production code reads an environment variable.
type envRead struct {
	Name string
	// Kind is the env.Reader method (String, Int, Duration, Bool), or Getenv for
	// os.Getenv and os.LookupEnv, which state no default.
	Kind string
	// Default is the default the code states, when it is a constant.
	Default    constant.Value
	HasDefault bool
	Pos        string // file:line relative to the repository
	decl       *declInfo
}

// envVar is every read of one variable, and who reaches them.
type envVar struct {
	Name  string
	Reads []envRead
	// UsedBy are the binaries (the directory name of each package main) whose
	// main reaches a read, or "tests" when only test code does.
	UsedBy []string
}

// envScan is the result of scanning a workspace.
type envScan struct {
	Vars map[string]*envVar
	// Binaries maps each binary to its package directory (relative to the
	// workspace root); Services are those under services/.
	Binaries map[string]string
	Services []string
	// Problems are reads the scan cannot pin down (a name that is not a
	// constant, a read nothing reaches).
	Problems []string
}

// workspaceModules returns the module directories go.work uses.
func workspaceModules(root string) ([]string, error) {
	src, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		return nil, err
	}
	return parseGoWork(string(src))
}

// parseGoWork returns the use directives of a go.work file.
func parseGoWork(src string) ([]string, error) {
	var dirs []string
	inUse := false
	for line := range strings.Lines(src) {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case inUse && line == ")":
			inUse = false
		case inUse && line != "":
			dirs = append(dirs, filepath.Clean(line))
		case line == "use (":
			inUse = true
		case strings.HasPrefix(line, "use "):
			dirs = append(dirs, filepath.Clean(strings.TrimSpace(strings.TrimPrefix(line, "use "))))
		}
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("go.work uses no module")
	}
	return dirs, nil
}

// modulePath returns the module path a go.mod declares.
func modulePath(gomod string) (string, error) {
	src, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(src)) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`), nil
		}
	}
	return "", fmt.Errorf("%s declares no module", gomod)
}

type pkgInfo struct {
	key    string // import path, + "_test" for an external test package
	path   string // import path
	dir    string // relative to the workspace root
	name   string
	consts map[string]constDecl
	decls  map[string][]*declInfo // top-level funcs and vars by name
	mainFn *declInfo              // func main of a non-test package main
}

// declInfo is one top-level function, method or variable.
type declInfo struct {
	key   string
	pkg   *pkgInfo
	file  *fileInfo
	test  bool
	nodes []ast.Node
	edges []*declInfo
}

type fileInfo struct {
	name     string // relative to the workspace root
	imports  map[string]string
	topLevel map[any]bool // the top-level declarations, to tell them from locals
	test     bool
	envPkg   bool // imports libs/env
}

type constDecl struct {
	expr ast.Expr
	typ  ast.Expr
	file *fileInfo
}

type scanner struct {
	root  string
	fset  *token.FileSet
	pkgs  map[string]*pkgInfo
	decls []*declInfo
	scan  *envScan
	reads []envRead
	// methods are every method of the workspace by name: a call x.M may
	// reach any of them (the scan has no types).
	methods map[string][]*declInfo
}

// scanEnv scans the given module directories of the workspace at root.
func scanEnv(root string, modules []string) (*envScan, error) {
	s := &scanner{root: root, fset: token.NewFileSet(), pkgs: map[string]*pkgInfo{}, methods: map[string][]*declInfo{},
		scan: &envScan{Vars: map[string]*envVar{}, Binaries: map[string]string{}}}
	for _, m := range modules {
		if err := s.parseModule(m); err != nil {
			return nil, err
		}
	}
	for _, d := range s.decls {
		s.walk(d)
	}
	s.usedBy()
	return s.scan, nil
}

func (s *scanner) parseModule(dir string) error {
	modPath, err := modulePath(filepath.Join(s.root, dir, "go.mod"))
	if err != nil {
		return err
	}
	modRoot := filepath.Join(s.root, dir)
	return filepath.WalkDir(modRoot, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			n := e.Name()
			if p != modRoot && (n == "testdata" || n == "vendor" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil && p != modRoot {
				return filepath.SkipDir // a nested module is not this one
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(modRoot, filepath.Dir(p))
		importPath := modPath
		if rel != "." {
			importPath = modPath + "/" + filepath.ToSlash(rel)
		}
		return s.parseFile(p, importPath)
	})
}

func (s *scanner) parseFile(file, importPath string) error {
	f, err := parser.ParseFile(s.fset, file, nil, parser.ParseComments) // comments for ignoredByBuild; with object resolution: locals shadow imports
	if err != nil {
		return err
	}
	if ignoredByBuild(f) {
		return nil
	}
	rel, _ := filepath.Rel(s.root, file)
	fi := &fileInfo{name: filepath.ToSlash(rel), imports: map[string]string{}, topLevel: map[any]bool{},
		test: strings.HasSuffix(file, "_test.go")}
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		name := importName(p)
		if im.Name != nil {
			name = im.Name.Name
		}
		fi.imports[name] = p
		if strings.HasSuffix(p, "/libs/env") {
			fi.envPkg = true
		}
	}
	key := importPath
	if strings.HasSuffix(f.Name.Name, "_test") {
		key += "_test"
	}
	pkg := s.pkgs[key]
	if pkg == nil {
		dir, _ := filepath.Rel(s.root, filepath.Dir(file))
		pkg = &pkgInfo{key: key, path: importPath, dir: filepath.ToSlash(dir), name: f.Name.Name,
			consts: map[string]constDecl{}, decls: map[string][]*declInfo{}}
		s.pkgs[key] = pkg
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			fi.topLevel[d] = true
			di := &declInfo{pkg: pkg, file: fi, test: fi.test}
			if d.Body != nil {
				di.nodes = []ast.Node{d.Body}
			}
			if d.Recv != nil && len(d.Recv.List) == 1 {
				di.key = key + "." + recvName(d.Recv.List[0].Type) + "." + d.Name.Name
				s.methods[d.Name.Name] = append(s.methods[d.Name.Name], di)
			} else {
				di.key = key + "." + d.Name.Name
				pkg.decls[d.Name.Name] = append(pkg.decls[d.Name.Name], di)
				if d.Name.Name == "main" && pkg.name == "main" && !fi.test {
					pkg.mainFn = di
				}
			}
			s.decls = append(s.decls, di)
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				vs, ok := spec.(*ast.ValueSpec)
				if !ok {
					continue
				}
				fi.topLevel[vs] = true
				for i, n := range vs.Names {
					switch d.Tok {
					case token.CONST:
						var e ast.Expr
						if i < len(vs.Values) {
							e = vs.Values[i]
						}
						if e != nil && !fi.test { // iota runs need no support: no setting uses them
							pkg.consts[n.Name] = constDecl{expr: e, typ: vs.Type, file: fi}
						}
					case token.VAR:
						di := &declInfo{key: key + "." + n.Name, pkg: pkg, file: fi, test: fi.test}
						if i < len(vs.Values) {
							di.nodes = []ast.Node{vs.Values[i]}
						}
						pkg.decls[n.Name] = append(pkg.decls[n.Name], di)
						s.decls = append(s.decls, di)
					}
				}
			}
		}
	}
	return nil
}

// ignoredByBuild reports a file excluded by a //go:build ignore line.
func ignoredByBuild(f *ast.File) bool {
	for _, c := range f.Comments {
		if c.Pos() > f.Package {
			break
		}
		for _, l := range c.List {
			if strings.HasPrefix(l.Text, "//go:build") && strings.Contains(l.Text, "ignore") {
				return true
			}
		}
	}
	return false
}

var majorVersion = regexp.MustCompile(`^v[0-9]+$`)

// importName guesses the package name of an import path without an alias:
// the last element, skipping a major version suffix, cut at a dot or dash.
func importName(p string) string {
	elems := strings.Split(p, "/")
	name := elems[len(elems)-1]
	if len(elems) > 1 && majorVersion.MatchString(name) {
		name = elems[len(elems)-2]
	}
	name = strings.TrimPrefix(name, "go-")
	if i := strings.IndexAny(name, ".-"); i > 0 {
		name = name[:i]
	}
	return name
}

func recvName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return recvName(t.X)
	case *ast.IndexExpr:
		return recvName(t.X)
	case *ast.IndexListExpr:
		return recvName(t.X)
	case *ast.Ident:
		return t.Name
	}
	return "?"
}

// isPackage tells whether id names an imported package in d's file.
func (d *declInfo) isPackage(id *ast.Ident) bool {
	if _, ok := d.file.imports[id.Name]; !ok {
		return false
	}
	return id.Obj == nil // a local variable of the same name shadows the import
}

// sameDecls returns the top-level declarations named name visible from d.
func (s *scanner) sameDecls(d *declInfo, pkg *pkgInfo, name string) []*declInfo {
	var out []*declInfo
	pkgs := []*pkgInfo{pkg}
	if strings.HasSuffix(pkg.key, "_test") {
		pkgs = append(pkgs, s.pkgs[pkg.path])
	}
	for _, p := range pkgs {
		if p == nil {
			continue
		}
		for _, c := range p.decls[name] {
			if d.test || !c.test { // production code cannot reach test code
				out = append(out, c)
			}
		}
	}
	return out
}

var envName = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)

// walk records d's edges and the variables it reads.
func (s *scanner) walk(d *declInfo) {
	sels := map[*ast.Ident]bool{}
	for _, n := range d.nodes {
		ast.Inspect(n, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.CallExpr:
				s.read(d, x)
			case *ast.SelectorExpr:
				sels[x.Sel] = true
				if id, ok := x.X.(*ast.Ident); ok && d.isPackage(id) {
					if p := s.pkgs[d.file.imports[id.Name]]; p != nil {
						d.edges = append(d.edges, s.sameDecls(d, p, x.Sel.Name)...)
					}
					return false
				}
				for _, c := range s.methods[x.Sel.Name] {
					if d.test || !c.test {
						d.edges = append(d.edges, c)
					}
				}
			case *ast.Ident:
				if sels[x] {
					return false
				}
				if x.Obj == nil || d.file.topLevel[x.Obj.Decl] {
					d.edges = append(d.edges, s.sameDecls(d, d.pkg, x.Name)...)
				}
			}
			return true
		})
	}
}

// read records call when it reads an environment variable.
func (s *scanner) read(d *declInfo, call *ast.CallExpr) {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || len(call.Args) == 0 {
		return
	}
	pos := s.fset.Position(call.Pos())
	at := fmt.Sprintf("%s:%d", d.file.name, pos.Line)
	var r envRead
	id, isIdent := sel.X.(*ast.Ident)
	switch {
	case strings.HasSuffix(d.pkg.path, "/libs/env"):
		return // env.Reader's own lookup: its callers are the reads
	case isIdent && d.isPackage(id) && d.file.imports[id.Name] == "os" && (sel.Sel.Name == "Getenv" || sel.Sel.Name == "LookupEnv"):
		v, ok := s.eval(d.pkg, d.file, call.Args[0], 0)
		if !ok || v.Kind() != constant.String {
			if !d.test {
				s.scan.Problems = append(s.scan.Problems, fmt.Sprintf("%s: os.%s of a name that is not a constant", at, sel.Sel.Name))
			}
			return
		}
		r = envRead{Name: constant.StringVal(v), Kind: "Getenv"}
	case d.file.envPkg && !(isIdent && d.isPackage(id)) && len(call.Args) == 2 &&
		slices.Contains([]string{"String", "Int", "Duration", "Bool"}, sel.Sel.Name):
		v, ok := s.eval(d.pkg, d.file, call.Args[0], 0)
		if !ok || v.Kind() != constant.String || !envName.MatchString(constant.StringVal(v)) {
			return // another String method, not an env.Reader
		}
		r = envRead{Name: constant.StringVal(v), Kind: sel.Sel.Name}
		if def, ok := s.eval(d.pkg, d.file, call.Args[1], 0); ok {
			r.Default, r.HasDefault = def, true
		}
	default:
		return
	}
	if d.test {
		return // tests set variables up; only production reads count
	}
	r.Pos, r.decl = at, d
	s.reads = append(s.reads, r)
}

var timeUnits = map[string]time.Duration{"Nanosecond": time.Nanosecond, "Microsecond": time.Microsecond,
	"Millisecond": time.Millisecond, "Second": time.Second, "Minute": time.Minute, "Hour": time.Hour}

// eval evaluates a constant expression (durations as nanoseconds), as far as
// defaults need: literals, named constants of the workspace, time units,
// arithmetic and conversions.
func (s *scanner) eval(pkg *pkgInfo, f *fileInfo, e ast.Expr, depth int) (constant.Value, bool) {
	if depth > 20 {
		return nil, false
	}
	switch x := e.(type) {
	case *ast.BasicLit:
		v := constant.MakeFromLiteral(x.Value, x.Kind, 0)
		return v, v.Kind() != constant.Unknown
	case *ast.ParenExpr:
		return s.eval(pkg, f, x.X, depth+1)
	case *ast.Ident:
		switch x.Name {
		case "true", "false":
			return constant.MakeBool(x.Name == "true"), true
		}
		if c, ok := pkg.consts[x.Name]; ok {
			return s.eval(pkg, c.file, c.expr, depth+1)
		}
		if p := s.pkgs[pkg.path]; strings.HasSuffix(pkg.key, "_test") && p != nil {
			if c, ok := p.consts[x.Name]; ok {
				return s.eval(p, c.file, c.expr, depth+1)
			}
		}
	case *ast.SelectorExpr:
		id, ok := x.X.(*ast.Ident)
		if !ok {
			return nil, false
		}
		ip := f.imports[id.Name]
		if ip == "time" {
			if u, ok := timeUnits[x.Sel.Name]; ok {
				return constant.MakeInt64(int64(u)), true
			}
		}
		if p := s.pkgs[ip]; p != nil {
			if c, ok := p.consts[x.Sel.Name]; ok {
				return s.eval(p, c.file, c.expr, depth+1)
			}
		}
	case *ast.UnaryExpr:
		v, ok := s.eval(pkg, f, x.X, depth+1)
		if ok {
			return constant.UnaryOp(x.Op, v, 0), true
		}
	case *ast.BinaryExpr:
		a, ok1 := s.eval(pkg, f, x.X, depth+1)
		b, ok2 := s.eval(pkg, f, x.Y, depth+1)
		if !ok1 || !ok2 {
			return nil, false
		}
		ints := a.Kind() == constant.Int && b.Kind() == constant.Int
		switch x.Op {
		case token.SHL, token.SHR:
			n, ok := constant.Uint64Val(b)
			if !ints || !ok {
				return nil, false
			}
			return constant.Shift(a, x.Op, uint(n)), true
		case token.QUO:
			if ints {
				return constant.BinaryOp(a, token.QUO_ASSIGN, b), true // integer division
			}
			fallthrough
		case token.ADD, token.SUB, token.MUL, token.REM:
			if a.Kind() != b.Kind() && !(isNumeric(a) && isNumeric(b)) {
				return nil, false
			}
			return constant.BinaryOp(a, x.Op, b), true
		}
	case *ast.CallExpr: // a conversion: time.Duration(n), float64(n), int64(n)
		if len(x.Args) == 1 {
			return s.eval(pkg, f, x.Args[0], depth+1)
		}
	}
	return nil, false
}

func isNumeric(v constant.Value) bool {
	return v.Kind() == constant.Int || v.Kind() == constant.Float
}

// usedBy walks the call graph from every main, and from the tests.
func (s *scanner) usedBy() {
	reach := func(roots []*declInfo) map[*declInfo]bool {
		seen := map[*declInfo]bool{}
		stack := slices.Clone(roots)
		for len(stack) > 0 {
			d := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[d] {
				continue
			}
			seen[d] = true
			stack = append(stack, d.edges...)
		}
		return seen
	}
	reached := map[string]map[*declInfo]bool{}
	for _, p := range s.pkgs {
		if p.mainFn == nil {
			continue
		}
		bin := path.Base(p.dir)
		if prev, dup := s.scan.Binaries[bin]; dup {
			s.scan.Problems = append(s.scan.Problems, fmt.Sprintf("two binaries named %s: %s and %s", bin, prev, p.dir))
		}
		s.scan.Binaries[bin] = p.dir
		if strings.HasPrefix(p.dir, "services/") || strings.Contains(p.dir, "/services/") {
			s.scan.Services = append(s.scan.Services, bin)
		}
		reached[bin] = reach([]*declInfo{p.mainFn})
	}
	slices.Sort(s.scan.Services)
	var tests []*declInfo
	for _, d := range s.decls {
		if d.test {
			tests = append(tests, d)
		}
	}
	byTests := reach(tests)

	for _, r := range s.reads {
		v := s.scan.Vars[r.Name]
		if v == nil {
			v = &envVar{Name: r.Name}
			s.scan.Vars[r.Name] = v
		}
		v.Reads = append(v.Reads, r)
	}
	for _, v := range s.scan.Vars {
		users := map[string]bool{}
		for _, r := range v.Reads {
			found := false
			for bin, seen := range reached {
				if seen[r.decl] {
					users[bin], found = true, true
				}
			}
			if !found && byTests[r.decl] {
				users["tests"], found = true, true
			}
			if !found {
				s.scan.Problems = append(s.scan.Problems,
					fmt.Sprintf("%s reads %s, but neither a binary nor a test reaches that code", r.Pos, r.Name))
			}
		}
		for u := range users {
			v.UsedBy = append(v.UsedBy, u)
		}
		slices.Sort(v.UsedBy)
	}
}

// formatDefault prints a default the way README.md writes it.
func formatDefault(kind string, v constant.Value) string {
	switch {
	case kind == "Duration" && v.Kind() == constant.Int:
		n, _ := constant.Int64Val(v)
		d := time.Duration(n).String() // 168h0m0s → 168h, 1m0s → 1m
		if strings.HasSuffix(d, "m0s") {
			d = strings.TrimSuffix(d, "0s")
		}
		if strings.HasSuffix(d, "h0m") {
			d = strings.TrimSuffix(d, "0m")
		}
		return d
	case v.Kind() == constant.String:
		return constant.StringVal(v)
	}
	return v.ExactString()
}

// sameDefault tells whether README.md's text states the code's default.
func sameDefault(kind string, code constant.Value, readme string) bool {
	switch kind {
	case "Duration":
		d, err := time.ParseDuration(readme)
		n, exact := constant.Int64Val(constant.ToInt(code))
		return err == nil && exact && int64(d) == n
	case "Int":
		n, err := strconv.ParseInt(readme, 10, 64)
		return err == nil && constant.Compare(constant.ToInt(code), token.EQL, constant.MakeInt64(n))
	case "Bool":
		b, err := strconv.ParseBool(readme)
		return err == nil && code.Kind() == constant.Bool && constant.BoolVal(code) == b
	}
	return code.Kind() == constant.String && constant.StringVal(code) == readme
}
