// Command schemagen writes sim/sage's request schema list (schema_gen.go) from
// Sage's official v3.1 swagger: for every POST and PUT request body of the
// resources Ledger writes (libs/sagewrite's table), each field the body may
// carry, as a dotted path ("[]" for array items), its JSON type and whether
// it is required. The simulator's strict mode checks every POST/PUT body
// against that list.
//
// The swagger lives beside the checkout (../shared/reference/, never
// committed); the list is committed, and TestGeneratedFileIsFresh fails when
// it is not what this command writes from the swagger:
//
//	cd sim/sage && go generate   # go run ./internal/schemagen -swagger … -out schema_gen.go
//
// The output depends on nothing but the swagger and the resource table:
// resources, methods and fields are sorted, and the file is gofmt'd.
package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/ledgersync/ledger/libs/sagewrite"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("schemagen", flag.ContinueOnError)
	swagger := fs.String("swagger", "", "Sage's v3.1 swagger (swagger 2.0 JSON)")
	out := fs.String("out", "schema_gen.go", "Go file to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *swagger == "" {
		return errors.New("-swagger is required")
	}
	doc, err := os.ReadFile(*swagger)
	if err != nil {
		return fmt.Errorf("%w (the swagger lives in ../shared/reference/ beside the checkout)", err)
	}
	src, err := generate(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(*out, src, 0o644)
}

// schema is the part of a swagger 2.0 schema object the request bodies use.
type schema struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Properties map[string]*schema `json:"properties"`
	Items      *schema            `json:"items"`
	Required   []string           `json:"required"`
	// Constructs schemagen does not interpret; generation fails when a body
	// schema uses one, rather than writing a list that says less than Sage.
	AllOf                []json.RawMessage `json:"allOf"`
	AnyOf                []json.RawMessage `json:"anyOf"`
	OneOf                []json.RawMessage `json:"oneOf"`
	AdditionalProperties json.RawMessage   `json:"additionalProperties"`
}

type operation struct {
	Parameters []struct {
		In     string  `json:"in"`
		Schema *schema `json:"schema"`
	} `json:"parameters"`
}

type swaggerDoc struct {
	Swagger     string                          `json:"swagger"`
	BasePath    string                          `json:"basePath"`
	Info        struct{ Title, Version string } `json:"info"`
	Paths       map[string]map[string]json.RawMessage
	Definitions map[string]*schema `json:"definitions"`
}

// field is one line of the generated list.
type field struct {
	path, typ string
	required  bool
}

// body is one request body: the method and path it is sent with, the swagger
// definition it is, and its fields.
type body struct {
	method, path, definition, root string
	fields                         []field
}

// generate returns the Go source of schema_gen.go.
func generate(raw []byte) ([]byte, error) {
	var doc swaggerDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("swagger: %w", err)
	}
	if doc.Swagger != "2.0" || doc.BasePath != "/v3.1" {
		return nil, fmt.Errorf("swagger: want a swagger 2.0 document of /v3.1, got swagger %q basePath %q", doc.Swagger, doc.BasePath)
	}
	var bodies []body
	for _, res := range ledgerResources() {
		for _, m := range []struct{ method, path string }{
			{"POST", "/" + res.Collection},
			{"PUT", "/" + res.Collection + "/{key}"},
		} {
			b, ok, err := requestBody(&doc, m.method, m.path, res.RootKey)
			if err != nil {
				return nil, err
			}
			if ok {
				bodies = append(bodies, b)
			} else if m.method == "POST" {
				return nil, fmt.Errorf("swagger has no POST %s body, and Ledger creates %s", m.path, res.Collection)
			}
		}
	}
	return render(&doc, bodies)
}

// ledgerResources are the resources Ledger writes, sorted by collection.
func ledgerResources() []sagewrite.Resource {
	var out []sagewrite.Resource
	for v := range ledgerv1.SageResource_name {
		if r, ok := sagewrite.ResourceOf(ledgerv1.SageResource(v)); ok {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b sagewrite.Resource) int { return cmp.Compare(a.Collection, b.Collection) })
	return slices.Compact(out)
}

// requestBody reads the body parameter of method path; false when the
// swagger has no such operation.
func requestBody(doc *swaggerDoc, method, path, root string) (body, bool, error) {
	rawOp, ok := doc.Paths[path][strings.ToLower(method)]
	if !ok {
		return body{}, false, nil
	}
	var op operation
	if err := json.Unmarshal(rawOp, &op); err != nil {
		return body{}, false, fmt.Errorf("%s %s: %w", method, path, err)
	}
	var s *schema
	for _, p := range op.Parameters {
		if p.In == "body" {
			s = p.Schema
		}
	}
	if s == nil {
		return body{}, false, fmt.Errorf("%s %s has no body parameter", method, path)
	}
	b := body{method: method, path: path, definition: strings.TrimPrefix(s.Ref, "#/definitions/"), root: root}
	top, err := resolve(doc, s, method+" "+path)
	if err != nil {
		return body{}, false, err
	}
	// Sage wraps the object in its singular root key, the only property.
	if len(top.Properties) != 1 || top.Properties[root] == nil {
		return body{}, false, fmt.Errorf("%s %s (%s): want the one root key %q, got %v", method, path, b.definition, root, slices.Sorted(maps.Keys(top.Properties)))
	}
	if err := walk(doc, top, "", &b.fields, 0); err != nil {
		return body{}, false, fmt.Errorf("%s %s (%s): %w", method, path, b.definition, err)
	}
	return b, true, nil
}

// resolve follows $ref (to #/definitions/ only) and refuses what schemagen
// does not interpret.
func resolve(doc *swaggerDoc, s *schema, where string) (*schema, error) {
	for range 32 {
		if s == nil {
			return nil, fmt.Errorf("%s: empty schema", where)
		}
		if s.Ref == "" {
			if len(s.AllOf)+len(s.AnyOf)+len(s.OneOf) > 0 || len(s.AdditionalProperties) > 0 {
				return nil, fmt.Errorf("%s: allOf/anyOf/oneOf/additionalProperties are not supported by schemagen", where)
			}
			return s, nil
		}
		name, ok := strings.CutPrefix(s.Ref, "#/definitions/")
		if !ok || doc.Definitions[name] == nil {
			return nil, fmt.Errorf("%s: unresolvable $ref %q", where, s.Ref)
		}
		s = doc.Definitions[name]
	}
	return nil, fmt.Errorf("%s: $ref chain too long", where)
}

// walk appends the fields of object s (at prefix) and of everything nested in
// it, depth-first in sorted order.
func walk(doc *swaggerDoc, s *schema, prefix string, out *[]field, depth int) error {
	if depth > 16 {
		return fmt.Errorf("%s: nested too deep (a recursive schema?)", prefix)
	}
	for _, name := range slices.Sorted(maps.Keys(s.Properties)) {
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		if err := member(doc, s.Properties[name], path, slices.Contains(s.Required, name), out, depth); err != nil {
			return err
		}
	}
	for _, r := range s.Required {
		if s.Properties[r] == nil {
			return fmt.Errorf("%s: required %q is not a property", prefix, r)
		}
	}
	return nil
}

// member appends the field at path, then its members or items.
func member(doc *swaggerDoc, s *schema, path string, required bool, out *[]field, depth int) error {
	s, err := resolve(doc, s, path)
	if err != nil {
		return err
	}
	typ := s.Type
	if typ == "" && s.Properties != nil {
		typ = "object"
	}
	switch typ {
	case "string", "number", "integer", "boolean":
		*out = append(*out, field{path, typ, required})
	case "object":
		*out = append(*out, field{path, typ, required})
		return walk(doc, s, path, out, depth+1)
	case "array":
		*out = append(*out, field{path, typ, required})
		return member(doc, s.Items, path+"[]", false, out, depth+1)
	default:
		return fmt.Errorf("%s: unsupported type %q", path, s.Type)
	}
	return nil
}

var goType = map[string]string{
	"string": "jsonString", "number": "jsonNumber", "integer": "jsonInteger", "boolean": "jsonBoolean",
	"object": "jsonObject", "array": "jsonArray",
}

func render(doc *swaggerDoc, bodies []body) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `// Code generated by schemagen from Sage's v3.1 swagger (%q, version %s); DO NOT EDIT.
// Regenerate with "go generate" in sim/sage; the swagger is read from ../shared/reference/.

package sagesim

// requestSchemas are the POST and PUT request bodies of the resources Ledger
// writes, as Sage's published swagger defines them: every field a body may
// carry, as a path below the body ("[]" stands for each array element), its
// JSON type, and whether its object requires it. Strict mode (schema.go)
// checks every POST/PUT body against them.
var requestSchemas = []requestSchema{
`, doc.Info.Title, doc.Info.Version)
	for _, body := range bodies {
		fmt.Fprintf(&b, "\t{Method: %q, Path: %q, Definition: %q, Root: %q, Fields: []schemaField{\n", body.method, body.path, body.definition, body.root)
		for _, f := range body.fields {
			fmt.Fprintf(&b, "\t\t{%q, %s, %t},\n", f.path, goType[f.typ], f.required)
		}
		b.WriteString("\t}},\n")
	}
	b.WriteString("}\n")
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("gofmt: %w", err)
	}
	return src, nil
}
