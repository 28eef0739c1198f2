package sagesim

//go:generate go run ./internal/schemagen -swagger ../../../shared/reference/sage-accounting-v3.1-swagger.json -out schema_gen.go

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Strict mode: every POST and PUT body is checked against Sage's published
// request schema (requestSchemas, generated from the official swagger into
// schema_gen.go). A field the schema does not have, a value of the wrong JSON
// type or a missing required field is a 422 in Sage's error array, naming the
// field: the first two before anything else reads the body, a missing field
// together with the resource's own answer (requireFields). It is on unless Config.LaxSchema is
// set (or SetStrictSchema(false) is called), so a client that drifts from
// Sage's schema fails in its tests instead of in production, where Sage
// refuses or silently drops what it does not know [I].

// jsonType is the JSON type a schema field takes.
type jsonType uint8

const (
	jsonString jsonType = iota + 1
	jsonNumber
	jsonInteger
	jsonBoolean
	jsonObject
	jsonArray
)

// String is the type as the error message names it ("a number").
func (t jsonType) String() string {
	switch t {
	case jsonString:
		return "a string"
	case jsonNumber:
		return "a number"
	case jsonInteger:
		return "an integer"
	case jsonBoolean:
		return "a boolean"
	case jsonObject:
		return "an object"
	case jsonArray:
		return "an array"
	}
	return "unknown"
}

// schemaField is one field a request body may carry: its path below the body
// ("sales_invoice.invoice_lines[].unit_price", "[]" for each array element),
// its JSON type, and whether the object holding it requires it.
type schemaField struct {
	Path     string
	Type     jsonType
	Required bool
}

// requestSchema is one POST or PUT request body of the swagger: the method
// and swagger path it is sent with, its definition name, root key and fields.
type requestSchema struct {
	Method, Path, Definition, Root string
	Fields                         []schemaField
}

// schemaExtension is a field Sage accepts although its published schema
// leaves it out; strict mode lets it through, on POST and PUT alike.
type schemaExtension struct {
	root  string // the body's root key; "" for every body
	field schemaField
	why   string
}

// schemaExtensions are the only fields beyond the swagger strict mode accepts.
// Each names where Sage's acceptance is documented; schema_test.go checks that
// none of them is in the swagger (an extension the swagger gains is stale).
var schemaExtensions = []schemaExtension{
	{"", schemaField{"idempotency_id", jsonString, false},
		"Sage's idempotency guide: a 32-hex idempotency_id inside the resource object, on POST and PUT (sage-v3.1.md §4.8)"},
	{"sales_invoice", schemaField{"invoice_lines[].currency_tax_amount", jsonNumber, false},
		"quirk CurrencyTaxAmountRequired (Byte8 §7): Sage requires it on every line (quirk_currency_tax_amount.go)"},
	{"sales_credit_note", schemaField{"credit_note_lines[].currency_tax_amount", jsonNumber, false},
		"quirk CurrencyTaxAmountRequired, on credit-note lines too"},
	{"contact", schemaField{"default_currency_id", jsonString, false},
		"quirk DefaultCurrencyIgnored (Byte8 §28): Sage accepts it and ignores it (quirk_default_currency.go)"},
}

// bodySchema is a requestSchema indexed for checking.
type bodySchema struct {
	definition string
	root       string
	fields     map[string]schemaField // by path
	required   map[string][]string    // object path ("" for the body) → the members it requires, sorted
}

// bodySchemas indexes requestSchemas and the extensions by method and root
// key ("POST contact").
var bodySchemas = indexSchemas(requestSchemas, schemaExtensions)

func indexSchemas(schemas []requestSchema, extensions []schemaExtension) map[string]*bodySchema {
	out := make(map[string]*bodySchema, len(schemas))
	for _, rs := range schemas {
		bs := &bodySchema{definition: rs.Definition, root: rs.Root, fields: map[string]schemaField{}, required: map[string][]string{}}
		fields := slices.Clone(rs.Fields)
		for _, e := range extensions {
			if e.root == "" || e.root == rs.Root {
				f := e.field
				f.Path = rs.Root + "." + f.Path
				fields = append(fields, f)
			}
		}
		for _, f := range fields {
			bs.fields[f.Path] = f
			if f.Required {
				parent, name := splitPath(f.Path)
				bs.required[parent] = append(bs.required[parent], name)
			}
		}
		for _, names := range bs.required {
			slices.Sort(names)
		}
		out[rs.Method+" "+rs.Root] = bs
	}
	return out
}

// splitPath splits a field path into its object's path and its name.
func splitPath(path string) (parent, name string) {
	i := strings.LastIndexByte(path, '.')
	if i < 0 {
		return "", path
	}
	return path[:i], path[i+1:]
}

// checkSchema is strict mode's check of a POST or PUT body sent with root key
// root (nothing for a method and root without a schema). bad are the unknown
// fields and values of the wrong type; missing are the required fields the
// body lacks (absent or null), in Sage's own "This field is required." form.
// Both are in field order.
func checkSchema(method, root string, body []byte) (bad, missing []APIError) {
	bs := bodySchemas[method+" "+root]
	if bs == nil {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var obj map[string]any
	if dec.Decode(&obj) != nil {
		return nil, nil // write answers malformed JSON itself
	}
	c := schemaCheck{bodySchema: bs}
	c.object(obj, "", "")
	return c.bad, c.missing
}

// schemaCheck is one body's check against bs.
type schemaCheck struct {
	*bodySchema
	bad, missing []APIError
}

// object checks the members of obj, the object at path (generic: "[]" for
// array elements) and at (concrete: "[2]").
func (c *schemaCheck) object(obj map[string]any, path, at string) {
	for _, name := range slices.Sorted(maps.Keys(obj)) {
		p, a := join(path, name), join(at, name)
		f, ok := c.fields[p]
		if !ok {
			c.bad = append(c.bad, apiErr(CodeRecordInvalid,
				fmt.Sprintf("Unknown field %s: Sage's %s has no such field.", a, c.definition), c.source(a)))
			continue
		}
		c.value(obj[name], f, p, a)
	}
	for _, name := range c.required[path] {
		if obj[name] == nil { // absent or null
			c.missing = append(c.missing, required(c.source(join(at, name))))
		}
	}
}

// value checks v against f. A null is an absent value: whether it may be
// absent is its object's check.
func (c *schemaCheck) value(v any, f schemaField, path, at string) {
	if v == nil {
		return
	}
	if !f.Type.holds(v) {
		c.bad = append(c.bad, apiErr(CodeRecordInvalid,
			fmt.Sprintf("Wrong type: %s must be %s, not %s.", at, f.Type, describeJSON(v)), c.source(at)))
		return
	}
	switch f.Type {
	case jsonObject:
		c.object(v.(map[string]any), path, at)
	case jsonArray:
		item, ok := c.fields[path+"[]"]
		if !ok {
			return
		}
		for i, e := range v.([]any) {
			c.value(e, item, item.Path, at+"["+strconv.Itoa(i)+"]")
		}
	}
}

// requireFields adds strict mode's missing required fields to a resource's
// answer. The resource's own validation answers them first, as Sage's model
// validation does (every problem at once, the umbrella line entry first);
// an entry it did not give is appended, so the answer always names every
// missing field. A resource that accepted the body although a required field
// is missing has a gap in its validation: the answer is still the 422, and
// TestStrictSchemaRequiredFields, which removes each required field in turn,
// fails until the resource checks the field itself (the gap would otherwise
// have stored the document).
func requireFields(resp *response, missing []APIError) *response {
	var errs []APIError
	switch {
	case resp.status/100 == 2:
	case resp.status == http.StatusUnprocessableEntity && json.Unmarshal(resp.body, &errs) == nil:
	default:
		return resp
	}
	for _, m := range missing {
		if !slices.Contains(errs, m) {
			errs = append(errs, m)
		}
	}
	return unprocessable(errs...)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// decimalText is a plain decimal, the form of money in Sage's own examples.
var decimalText = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// holds reports whether v (decoded with UseNumber) is of type t. A number may
// also be sent as a string holding a plain decimal ("55.55"), as Sage's own
// payment examples send amounts and as Sage serializes money [V PAY]; an
// integer is a JSON number without a fraction or exponent (nothing shows
// Sage taking "30").
func (t jsonType) holds(v any) bool {
	switch v := v.(type) {
	case string:
		switch t {
		case jsonString:
			return true
		case jsonNumber:
			return decimalText.MatchString(v)
		}
	case json.Number:
		switch t {
		case jsonNumber:
			return true
		case jsonInteger:
			return !strings.ContainsAny(string(v), ".eE")
		}
	case bool:
		return t == jsonBoolean
	case map[string]any:
		return t == jsonObject
	case []any:
		return t == jsonArray
	}
	return false
}

// describeJSON names the JSON type of v for an error message.
func describeJSON(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", truncate(v, 40))
	case json.Number:
		return "the number " + truncate(string(v), 40)
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return "null"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// source is Sage's $source for the field at (a concrete path below the body):
// relative to the resource object, without array indices, and line fields
// under line_items (invoice_lines and credit_note_lines alike), as Sage names
// them in its own validation errors.
func (bs *bodySchema) source(at string) string {
	rel, ok := strings.CutPrefix(at, bs.root+".")
	if !ok {
		return at // the root key itself, or a stray top-level key
	}
	segs := strings.Split(rel, ".")
	for i, s := range segs {
		if j := strings.IndexByte(s, '['); j >= 0 {
			segs[i] = s[:j]
		}
	}
	if segs[0] == "invoice_lines" || segs[0] == "credit_note_lines" {
		segs[0] = "line_items"
	}
	return strings.Join(segs, ".")
}

// schemaMode is the body of GET and PUT /__sim/schema.
type schemaMode struct {
	Strict bool `json:"strict"`
}
