package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// swaggerPath finds Sage's swagger in ../shared/reference/ beside the
// checkout (the directory holding go.work); "" when it is not there.
func swaggerPath(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			p := filepath.Join(dir, "..", "shared", "reference", "sage-accounting-v3.1-swagger.json")
			if _, err := os.Stat(p); err != nil {
				return ""
			}
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// TestGeneratedFileIsFresh regenerates the request schema list from the
// official swagger and compares it with the committed sim/sage/schema_gen.go.
func TestGeneratedFileIsFresh(t *testing.T) {
	t.Parallel()
	path := swaggerPath(t)
	if path == "" {
		t.Skip("Sage's swagger is not in ../shared/reference/ beside the checkout: cannot check that sim/sage/schema_gen.go is fresh")
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := generate(doc)
	if err != nil {
		t.Fatal(err)
	}
	again, err := generate(doc)
	if err != nil || !bytes.Equal(got, again) {
		t.Fatalf("two runs over the same swagger differ (err %v)", err)
	}
	committed, err := os.ReadFile(filepath.Join("..", "..", "schema_gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, committed) {
		t.Fatal("sim/sage/schema_gen.go is not what schemagen writes from the swagger: run `go generate` in sim/sage and commit the result")
	}
	// Every resource Ledger writes has its create body.
	for _, res := range ledgerResources() {
		if !bytes.Contains(got, []byte(`Method: "POST", Path: "/`+res.Collection+`"`)) {
			t.Errorf("no POST /%s in the list", res.Collection)
		}
	}
}

// TestGenerate runs the generator over a small swagger: $ref resolved, fields
// sorted and nested, required marked, and what it cannot read refused.
func TestGenerate(t *testing.T) {
	t.Parallel()
	const doc = `{"swagger":"2.0","basePath":"/v3.1","info":{"title":"T","version":"3.1"},
	"paths":{
	  "/contacts":{"post":{"parameters":[{"in":"body","schema":{"$ref":"#/definitions/postContacts"}}]}},
	  "/contacts/{key}":{"put":{"parameters":[{"in":"path","name":"key"},{"in":"body","schema":{"$ref":"#/definitions/putContacts"}}]}},
	  "/sales_invoices":{"post":{"parameters":[{"in":"body","schema":{"$ref":"#/definitions/postSalesInvoices"}}]}},
	  "/sales_credit_notes":{"post":{"parameters":[{"in":"body","schema":{"type":"object","properties":{"sales_credit_note":{"type":"object"}}}}]}},
	  "/contact_payments":{"post":{"parameters":[{"in":"body","schema":{"type":"object","properties":{"contact_payment":{"type":"object"}}}}]}},
	  "/contact_allocations":{"post":{"parameters":[{"in":"body","schema":{"type":"object","properties":{"contact_allocation":{"type":"object"}}}}]}},
	  "/products":{"post":{"parameters":[{"in":"body","schema":{"type":"object","properties":{"product":{"type":"object"}}}}]}},
	  "/services":{"post":{"parameters":[{"in":"body","schema":{"type":"object","properties":{"service":{"type":"object"}}}}]}}
	},
	"definitions":{
	  "postContacts":{"type":"object","required":["contact"],"properties":{"contact":{"type":"object","required":["name"],
	    "properties":{"name":{"type":"string"},"credit_days":{"type":"integer"},"address":{"$ref":"#/definitions/Address"},
	    "contact_type_ids":{"type":"array","items":{"type":"string"}}}}}},
	  "putContacts":{"type":"object","properties":{"contact":{"type":"object","properties":{"name":{"type":"string"}}}}},
	  "Address":{"type":"object","properties":{"city":{"type":"string"},"active":{"type":"boolean"}}},
	  "postSalesInvoices":{"type":"object","properties":{"sales_invoice":{"type":"object","properties":{
	    "invoice_lines":{"type":"array","items":{"type":"object","required":["unit_price"],"properties":{"unit_price":{"type":"number"}}}}}}}}
	}}`
	src, err := generate([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{Method: "POST", Path: "/contacts", Definition: "postContacts", Root: "contact", Fields: []schemaField{
		{"contact", jsonObject, true},
		{"contact.address", jsonObject, false},
		{"contact.address.active", jsonBoolean, false},
		{"contact.address.city", jsonString, false},
		{"contact.contact_type_ids", jsonArray, false},
		{"contact.contact_type_ids[]", jsonString, false},
		{"contact.credit_days", jsonInteger, false},
		{"contact.name", jsonString, true},
	}},
	{Method: "PUT", Path: "/contacts/{key}", Definition: "putContacts", Root: "contact", Fields: []schemaField{
		{"contact", jsonObject, false},
		{"contact.name", jsonString, false},
	}},`,
		`{"sales_invoice.invoice_lines[]", jsonObject, false},
		{"sales_invoice.invoice_lines[].unit_price", jsonNumber, true},`,
		`{Method: "POST", Path: "/sales_credit_notes", Definition: "", Root: "sales_credit_note"`,
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("missing:\n%s\nin:\n%s", want, src)
		}
	}

	for name, bad := range map[string]string{
		"allOf":       `"postContacts":{"type":"object","properties":{"contact":{"allOf":[{"type":"object"}]}}}`,
		"dangling":    `"postContacts":{"type":"object","properties":{"contact":{"$ref":"#/definitions/Nope"}}}`,
		"wrong root":  `"postContacts":{"type":"object","properties":{"customer":{"type":"object"}}}`,
		"no type":     `"postContacts":{"type":"object","properties":{"contact":{"type":"object","properties":{"x":{}}}}}`,
		"ghost req":   `"postContacts":{"type":"object","properties":{"contact":{"type":"object","required":["x"]}}}`,
		"recursive":   `"postContacts":{"type":"object","properties":{"contact":{"$ref":"#/definitions/Loop"}}},"Loop":{"type":"object","properties":{"next":{"$ref":"#/definitions/Loop"}}}`,
		"no POST":     `"postContacts":{}`,
		"not swagger": `"postContacts":{"type":"object"}`,
	} {
		d := strings.Replace(doc, `"postContacts":{"type":"object","required":["contact"],"properties":{"contact":{"type":"object","required":["name"],
	    "properties":{"name":{"type":"string"},"credit_days":{"type":"integer"},"address":{"$ref":"#/definitions/Address"},
	    "contact_type_ids":{"type":"array","items":{"type":"string"}}}}}}`, bad, 1)
		switch name {
		case "no POST":
			d = strings.Replace(d, `"/contacts":{"post":`, `"/contacts":{"get":`, 1)
		case "not swagger":
			d = strings.Replace(d, `"swagger":"2.0"`, `"openapi":"3.0.0"`, 1)
		}
		if d == doc {
			t.Fatalf("%s: the case did not change the document", name)
		}
		if _, err := generate([]byte(d)); err == nil {
			t.Errorf("%s: generated without an error", name)
		}
	}
}
