package sagesim

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestStrictSchemaRefusesUnknownFields(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	if !e.sim.StrictSchema() {
		t.Fatal("strict mode must be on by default")
	}
	// The contact e-mail Sage's postContacts does not have: it belongs in
	// main_contact_person.
	body := map[string]any{"contact": map[string]any{"name": "Acme", "contact_type_ids": []string{"CUSTOMER"},
		"email": "a@example.com", "main_contact_person": map[string]any{"name": "Ann", "email": "a@example.com", "nickname": "A"}}}
	got := e.expect(http.StatusUnprocessableEntity, "POST", "/contacts", body)
	want := `[{"$severity":"error","$dataCode":"RecordInvalid","$message":"Unknown field contact.email: Sage's postContacts has no such field.","$source":"email"},` +
		`{"$severity":"error","$dataCode":"RecordInvalid","$message":"Unknown field contact.main_contact_person.nickname: Sage's postContacts has no such field.","$source":"main_contact_person.nickname"}]`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if n := len(e.sim.Contacts(e.sim.LeadBusinessID())); n != 0 {
		t.Fatalf("%d contacts created by a refused body", n)
	}

	// A line field is named with its index in the message and under
	// line_items in $source, as Sage names line errors; a stray top-level key
	// beside the root key is refused too.
	c := e.customer("Acme", "ACME")
	ledger := e.salesLedger()
	bad := goodLine(ledger, "Gadget", "5.00", "1.00")
	bad["colour"] = "blue"
	errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/sales_invoices", map[string]any{
		"sales_invoice": goodInvoice(c.ID, goodLine(ledger, "Widget", "10.00", "2.00"), bad), "extra": true}))
	if len(errs) != 2 ||
		errs[0] != apiErr(CodeRecordInvalid, "Unknown field extra: Sage's postSalesInvoices has no such field.", "extra") ||
		errs[1] != apiErr(CodeRecordInvalid, "Unknown field sales_invoice.invoice_lines[1].colour: Sage's postSalesInvoices has no such field.", "line_items.colour") {
		t.Fatalf("line: %+v", errs)
	}

	// PUT bodies are checked against the put* schema: a product has no
	// currency_id.
	var p Product
	mustJSON(t, e.expect(http.StatusCreated, "POST", "/products", map[string]any{"product": map[string]any{
		"item_code": "W1", "description": "Widget", "sales_ledger_account_id": ledger, "purchase_ledger_account_id": ledger}}), &p)
	errs = errorsOf(t, e.expect(http.StatusUnprocessableEntity, "PUT", "/products/"+p.ID,
		map[string]any{"product": map[string]any{"description": "Blue widget", "currency_id": "GBP"}}))
	if len(errs) != 1 || errs[0] != apiErr(CodeRecordInvalid, "Unknown field product.currency_id: Sage's putProducts has no such field.", "currency_id") {
		t.Fatalf("PUT: %+v", errs)
	}
	errs = errorsOf(t, e.expect(http.StatusUnprocessableEntity, "PUT", "/contacts/"+c.ID,
		map[string]any{"contact": map[string]any{"email": "new@example.com"}}))
	if len(errs) != 1 || errs[0].Source != "email" || !strings.Contains(errs[0].Message, "putContacts") {
		t.Fatalf("PUT contact: %+v", errs)
	}

	// The extensions Sage documents outside its schema pass: idempotency_id,
	// currency_tax_amount on lines (goodLine sends it), default_currency_id.
	e.expect(http.StatusCreated, "POST", "/contacts", map[string]any{"contact": map[string]any{
		"name": "Euro", "contact_type_ids": []string{"CUSTOMER"}, "default_currency_id": "EUR",
		"idempotency_id": strings.Repeat("ab", 16)}})
	e.createInvoice(goodInvoice(c.ID, goodLine(ledger, "Widget", "10.00", "2.00")))
}

func TestStrictSchemaRefusesWrongTypes(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	c := e.customer("Acme", "ACME")
	ledger := e.salesLedger()
	line := goodLine(ledger, "Widget", "10.00", "2.00")
	line["unit_price"] = true
	line["quantity"] = "two"
	inv := goodInvoice(c.ID, line)
	inv["date"] = 20260115
	inv["main_address"] = "1 High Street"
	errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/sales_invoices", map[string]any{"sales_invoice": inv}))
	want := []APIError{
		apiErr(CodeRecordInvalid, "Wrong type: sales_invoice.date must be a string, not the number 20260115.", "date"),
		apiErr(CodeRecordInvalid, `Wrong type: sales_invoice.invoice_lines[0].quantity must be a number, not the string "two".`, "line_items.quantity"),
		apiErr(CodeRecordInvalid, "Wrong type: sales_invoice.invoice_lines[0].unit_price must be a number, not a boolean.", "line_items.unit_price"),
		apiErr(CodeRecordInvalid, `Wrong type: sales_invoice.main_address must be an object, not the string "1 High Street".`, "main_address"),
	}
	if !slices.Equal(errs, want) {
		t.Fatalf("got  %+v\nwant %+v", errs, want)
	}

	// Numbers may be numeric strings (Sage's own examples send "55.55");
	// integers are whole JSON numbers; arrays hold their item type; booleans are JSON
	// booleans.
	cases := []struct {
		name   string
		fields map[string]any
		source string // "" when accepted
	}{
		{"numeric string", map[string]any{"credit_limit": "1500.50"}, ""},
		{"number", map[string]any{"credit_limit": 1500.5}, ""},
		{"integer", map[string]any{"credit_days": 30}, ""},
		{"integer string", map[string]any{"credit_days": "30"}, "credit_days"},
		{"null", map[string]any{"credit_days": nil, "notes": nil}, ""},
		{"exponent string", map[string]any{"credit_limit": "1e3"}, "credit_limit"},
		{"fraction for integer", map[string]any{"credit_days": 30.5}, "credit_days"},
		{"number in string array", map[string]any{"contact_type_ids": []any{"CUSTOMER", 7}}, "contact_type_ids"},
		{"string for boolean", map[string]any{"destination_vat_blocking": "true"}, "destination_vat_blocking"},
		{"array for object", map[string]any{"tax_treatment": []any{}}, "tax_treatment"},
	}
	for _, tc := range cases {
		fields := map[string]any{"name": "Typed " + tc.name, "contact_type_ids": []string{"CUSTOMER"}}
		for k, v := range tc.fields {
			fields[k] = v
		}
		resp, b := e.do("POST", "/contacts", map[string]any{"contact": fields})
		switch {
		case tc.source == "" && resp.StatusCode != http.StatusCreated:
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, b)
		case tc.source != "" && (resp.StatusCode != http.StatusUnprocessableEntity || errorsOf(t, b)[0].Source != tc.source ||
			!strings.HasPrefix(errorsOf(t, b)[0].Message, "Wrong type: contact.")):
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, b)
		}
	}
}

// TestStrictSchemaRequiredFields removes each field a POST schema requires, in
// turn, from a body the simulator accepts: the answer is a 422 naming it and
// nothing is stored. The resource's own validation gives the answer (Sage's
// model validation: every problem at once, the umbrella line entry first), so
// this also proves no resource lets a schema-required field through.
func TestStrictSchemaRequiredFields(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	lead := e.sim.LeadBusinessID()
	c := e.customer("Acme", "ACME")
	ledger := e.salesLedger()
	inv := e.createInvoice(goodInvoice(c.ID, goodLine(ledger, "Widget", "10.00", "2.00")))
	cn := e.createCreditNote(creditNoteBody(c.ID, goodLine(ledger, "Returned", "5.00", "1.00")))
	valid := map[string]func() map[string]any{
		"contact": func() map[string]any {
			return map[string]any{"contact": map[string]any{"name": "Required Ltd", "contact_type_ids": []string{"CUSTOMER"}}}
		},
		"sales_invoice": func() map[string]any {
			return map[string]any{"sales_invoice": goodInvoice(c.ID, goodLine(ledger, "Widget", "10.00", "2.00"))}
		},
		"sales_credit_note": func() map[string]any { return creditNoteBody(c.ID, goodLine(ledger, "Returned", "5.00", "1.00")) },
		"contact_payment":   func() map[string]any { return e.payment("CUSTOMER_RECEIPT", c.ID, "1.00", inv.ID, "1.00") },
		"contact_allocation": func() map[string]any {
			return map[string]any{"contact_allocation": map[string]any{"transaction_type_id": "CUSTOMER_ALLOCATION", "contact_id": c.ID,
				"allocated_artefacts": []any{map[string]any{"artefact_id": inv.ID, "amount": "1.00"},
					map[string]any{"artefact_id": cn.ID, "amount": "-1.00"}}}}
		},
		"product": func() map[string]any {
			return map[string]any{"product": map[string]any{"description": "Widget", "sales_ledger_account_id": ledger,
				"purchase_ledger_account_id": ledger}}
		},
		"service": func() map[string]any {
			return map[string]any{"service": map[string]any{"description": "Support", "sales_ledger_account_id": ledger}}
		},
	}
	stored := func() int {
		return len(e.sim.Contacts(lead)) + len(e.sim.Invoices(lead)) + len(e.sim.CreditNotes(lead)) + len(e.sim.Payments(lead)) +
			len(e.sim.Allocations(lead)) + len(e.sim.Products(lead)) + len(e.sim.Services(lead))
	}
	for _, rs := range requestSchemas {
		if rs.Method != http.MethodPost {
			continue
		}
		build := valid[rs.Root]
		if build == nil {
			t.Errorf("no valid %s body to test %s against: add one", rs.Root, rs.Definition)
			continue
		}
		for _, f := range rs.Fields {
			if !f.Required || f.Path == rs.Root {
				continue
			}
			body := build()
			removeField(t, body, f.Path)
			before := stored()
			errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", rs.Path, body))
			src := bodySchemas["POST "+rs.Root].source(strings.ReplaceAll(f.Path, "[]", "[0]"))
			if !slices.Contains(errs, required(src)) {
				t.Errorf("%s without %s: %+v, want %s", rs.Definition, f.Path, errs, src)
			}
			if stored() != before {
				t.Errorf("%s without %s: a document was stored", rs.Definition, f.Path)
			}
		}
		// The complete body is accepted.
		e.expect(http.StatusCreated, "POST", rs.Path, build())
	}
	// Every write route of the simulator has a schema.
	for _, key := range []string{"POST contact", "PUT contact", "POST sales_invoice", "PUT sales_invoice", "POST sales_credit_note",
		"PUT sales_credit_note", "POST contact_payment", "POST contact_allocation", "POST product", "PUT product", "POST service", "PUT service"} {
		if bodySchemas[key] == nil {
			t.Errorf("no request schema for %s", key)
		}
	}
}

// removeField deletes the field at a schema path from body, taking the first
// element of each array on the way.
func removeField(t *testing.T, body map[string]any, path string) {
	t.Helper()
	segs := strings.Split(path, ".")
	obj := body
	for _, s := range segs[:len(segs)-1] {
		name, isArray := strings.CutSuffix(s, "[]")
		next := obj[name]
		if isArray {
			switch arr := next.(type) {
			case []any:
				next = arr[0]
			case []map[string]any:
				next = arr[0]
			}
		}
		m, ok := next.(map[string]any)
		if !ok {
			t.Fatalf("%s: no object at %s in %v", path, s, body)
		}
		obj = m
	}
	last := segs[len(segs)-1]
	if _, ok := obj[last]; !ok {
		t.Fatalf("the valid body has no %s to remove", path)
	}
	delete(obj, last)
}

func TestRequireFieldsJoinsTheResourceAnswer(t *testing.T) {
	t.Parallel()
	missing := []APIError{required("line_items.unit_price"), required("date")}
	umbrella := apiErr(CodeRecordInvalid, "This field is required.", "line_items.description")
	got := requireFields(unprocessable(umbrella, required("line_items.unit_price")), missing)
	var errs []APIError
	if err := json.Unmarshal(got.body, &errs); err != nil || got.status != http.StatusUnprocessableEntity ||
		!slices.Equal(errs, []APIError{umbrella, required("line_items.unit_price"), required("date")}) {
		t.Fatalf("merged: %d %s", got.status, got.body)
	}
	// A resource that let a required field through is still answered 422.
	got = requireFields(jsonResponse(http.StatusCreated, map[string]string{"id": "x"}), missing)
	if err := json.Unmarshal(got.body, &errs); err != nil || got.status != http.StatusUnprocessableEntity || !slices.Equal(errs, missing) {
		t.Fatalf("accepted: %d %s", got.status, got.body)
	}
	if nf := notFound(); requireFields(nf, missing) != nf {
		t.Fatal("other answers are kept")
	}
}

func TestLaxSchema(t *testing.T) {
	t.Parallel()
	body := map[string]any{"contact": map[string]any{"name": "Acme", "contact_type_ids": []string{"CUSTOMER"}, "email": "a@example.com"}}
	e := loggedIn(t, Config{LaxSchema: true})
	e.expect(http.StatusCreated, "POST", "/contacts", body)
	// The switch at runtime, from Go and over /__sim/schema.
	e.sim.SetStrictSchema(true)
	e.expect(http.StatusUnprocessableEntity, "POST", "/contacts", body)
	for _, mode := range []string{`{"strict":false}`, `{"strict":true}`} {
		req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/__sim/schema", strings.NewReader(mode))
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || e.sim.StrictSchema() != (mode == `{"strict":true}`) {
			t.Fatalf("PUT /__sim/schema %s: %d, strict %t", mode, resp.StatusCode, e.sim.StrictSchema())
		}
	}
	e.expect(http.StatusUnprocessableEntity, "POST", "/contacts", body)
}

// TestSchemaExtensionsAreNotInTheSwagger keeps the extensions honest: each
// sits in an object the schema has, and none is a field the schema already
// lists (then it would be no extension, and the entry stale).
func TestSchemaExtensionsAreNotInTheSwagger(t *testing.T) {
	t.Parallel()
	for _, ext := range schemaExtensions {
		n := 0
		for _, rs := range requestSchemas {
			if ext.root != "" && ext.root != rs.Root {
				continue
			}
			n++
			path := rs.Root + "." + ext.field.Path
			parent, _ := splitPath(path)
			var hasParent bool
			for _, f := range rs.Fields {
				if f.Path == path {
					t.Errorf("%s: %s is in the swagger now; drop the extension", rs.Definition, path)
				}
				hasParent = hasParent || f.Path == parent && f.Type == jsonObject
			}
			if !hasParent {
				t.Errorf("%s: extension %s has no object %s to sit in", rs.Definition, path, parent)
			}
		}
		if n == 0 || ext.why == "" {
			t.Errorf("extension %+v applies to no schema or says not why", ext)
		}
	}
}
