package sagewrite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ledgersync/ledger/libs/money"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

func TestPlanSetsIdempotencyAndBindings(t *testing.T) {
	t.Parallel()
	op := &ledgerv1.SageOperation{Key: "invoice", Resource: ledgerv1.SageResource_SAGE_RESOURCE_SALES_INVOICE,
		IdempotencyId: "abc", Body: []byte(`{"date":"2026-01-01","contact_id":"stale"}`),
		Bindings: []*ledgerv1.FieldBinding{{Field: "contact_id", FromKey: "contact"}}}
	req, err := Plan(op, map[string]string{"contact": "C1"})
	if err != nil {
		t.Fatal(err)
	}
	if req.Key != "invoice" || req.Resource != (Resource{"sales_invoices", "sales_invoice"}) {
		t.Errorf("request %+v", req)
	}
	if b, err := req.JSON(); err != nil || string(b) != `{"contact_id":"C1","date":"2026-01-01","idempotency_id":"abc"}` {
		t.Fatalf("%s %v", b, err)
	}
}

func TestPlanBindsPathsAndKeepsNumbersExact(t *testing.T) {
	t.Parallel()
	op := &ledgerv1.SageOperation{Key: "payment", Resource: ledgerv1.SageResource_SAGE_RESOURCE_CONTACT_PAYMENT,
		IdempotencyId: "abc", Body: []byte(`{"total_amount":12.10,"allocated_artefacts":[{"amount":12.10}]}`),
		Bindings: []*ledgerv1.FieldBinding{{Field: "contact_id", FromKey: "contact"},
			{Field: "allocated_artefacts.0.artefact_id", FromKey: "invoice"}}}
	req, err := Plan(op, map[string]string{"contact": "C1", "invoice": "I1"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := req.JSON()
	want := `{"allocated_artefacts":[{"amount":12.10,"artefact_id":"I1"}],"contact_id":"C1","idempotency_id":"abc","total_amount":12.10}`
	if string(b) != want {
		t.Fatalf("%s\nwant %s", b, want)
	}
}

func TestPlanWithoutBodyOrIdempotency(t *testing.T) {
	t.Parallel()
	req, err := Plan(&ledgerv1.SageOperation{Key: "c", Resource: ledgerv1.SageResource_SAGE_RESOURCE_CONTACT}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := req.JSON(); string(b) != `{}` {
		t.Fatalf("%s", b)
	}
}

func TestPlanRefusesInvalidWrites(t *testing.T) {
	t.Parallel()
	inv := ledgerv1.SageResource_SAGE_RESOURCE_SALES_INVOICE
	ids := map[string]string{"contact": "C1", "invoice": "I1"}
	bind := func(field, from string) []*ledgerv1.FieldBinding {
		return []*ledgerv1.FieldBinding{{Field: field, FromKey: from}}
	}
	for _, c := range []struct {
		name string
		op   *ledgerv1.SageOperation
		want string
	}{
		{"no resource", &ledgerv1.SageOperation{Key: "x"}, `operation "x" has no known Sage resource (SAGE_RESOURCE_UNSPECIFIED)`},
		{"unknown resource", &ledgerv1.SageOperation{Key: "x", Resource: 999}, `operation "x" has no known Sage resource (999)`},
		{"array body", &ledgerv1.SageOperation{Key: "x", Resource: inv, Body: []byte(`[1]`)}, `operation "x": body is not a JSON object`},
		{"null body", &ledgerv1.SageOperation{Key: "x", Resource: inv, Body: []byte(`null`)}, `operation "x": body is not a JSON object`},
		{"broken body", &ledgerv1.SageOperation{Key: "x", Resource: inv, Body: []byte(`{"a":`)}, `operation "x": body is not a JSON object`},
		{"unbound key", &ledgerv1.SageOperation{Key: "x", Resource: inv, Bindings: bind("contact_id", "payment")},
			`operation "x" binds "contact_id" to "payment", which is not an earlier operation of the write`},
		{"empty field", &ledgerv1.SageOperation{Key: "x", Resource: inv, Bindings: bind("", "contact")},
			`operation "x" binds "": field path "" has an empty segment`},
		{"out-of-range index", &ledgerv1.SageOperation{Key: "x", Resource: inv, Body: []byte(`{"allocated_artefacts":[{}]}`),
			Bindings: bind("allocated_artefacts.3.artefact_id", "invoice")},
			`operation "x" binds "allocated_artefacts.3.artefact_id": "3" is not an index of the 1-element array "allocated_artefacts"`},
	} {
		_, err := Plan(c.op, ids)
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Key != c.op.GetKey() || err.Error() != c.want {
			t.Errorf("%s: got %v\nwant %s", c.name, err, c.want)
		}
	}
}

func TestSetPath(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, body, path, want string
	}{
		{"top-level key", `{"a":1}`, "contact_id", `{"a":1,"contact_id":"V"}`},
		{"replaces a value", `{"contact_id":"stale"}`, "contact_id", `{"contact_id":"V"}`},
		{"nested object", `{"contact":{"name":"n"}}`, "contact.id", `{"contact":{"id":"V","name":"n"}}`},
		{"creates missing objects", `{}`, "a.b.c", `{"a":{"b":{"c":"V"}}}`},
		{"replaces a null object", `{"a":null}`, "a.b", `{"a":{"b":"V"}}`},
		{"array element field", `{"allocated_artefacts":[{"amount":1},{"amount":2}]}`, "allocated_artefacts.1.artefact_id",
			`{"allocated_artefacts":[{"amount":1},{"amount":2,"artefact_id":"V"}]}`},
		{"array element itself", `{"ids":["x","y"]}`, "ids.0", `{"ids":["V","y"]}`},
		{"array in array", `{"m":[[0],[1,2]]}`, "m.1.1", `{"m":[[0],[1,"V"]]}`},
		{"numeric key of an object", `{"lines":{"0":{}}}`, "lines.0.id", `{"lines":{"0":{"id":"V"}}}`},
	} {
		obj := decode(t, c.body)
		if err := setPath(obj, c.path, "V"); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got, _ := json.Marshal(obj); string(got) != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestSetPathErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, body, path, want string
	}{
		{"empty path", `{}`, "", `field path "" has an empty segment`},
		{"empty segment", `{}`, "a..b", `field path "a..b" has an empty segment`},
		{"leading dot", `{}`, ".a", `field path ".a" has an empty segment`},
		{"trailing dot", `{}`, "a.", `field path "a." has an empty segment`},
		{"index past the end", `{"l":[{}]}`, "l.1.id", `"1" is not an index of the 1-element array "l"`},
		{"negative index", `{"l":[{}]}`, "l.-1.id", `"-1" is not an index of the 1-element array "l"`},
		{"key in an array", `{"l":[{}]}`, "l.first.id", `"first" is not an index of the 1-element array "l"`},
		{"empty array", `{"l":[]}`, "l.0", `"0" is not an index of the 0-element array "l"`},
		{"inside a string", `{"contact_id":"C"}`, "contact_id.id", `"contact_id" is a string, not an object or array, so it has no "id"`},
		{"inside a number", `{"a":{"n":1.5}}`, "a.n.x", `"a.n" is a number, not an object or array, so it has no "x"`},
		{"inside a boolean", `{"b":true}`, "b.x", `"b" is a boolean, not an object or array, so it has no "x"`},
		{"inside a null element", `{"l":[null]}`, "l.0.id", `"l.0" is null, not an object or array, so it has no "id"`},
	} {
		obj := decode(t, c.body)
		before, _ := json.Marshal(obj)
		err := setPath(obj, c.path, "V")
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: got %v\nwant %s", c.name, err, c.want)
		}
		if after, _ := json.Marshal(obj); string(after) != string(before) {
			t.Errorf("%s: a refused path changed the body: %s", c.name, after)
		}
	}
}

func decode(t *testing.T, body string) map[string]any {
	t.Helper()
	req, err := Plan(&ledgerv1.SageOperation{Resource: ledgerv1.SageResource_SAGE_RESOURCE_CONTACT, Body: []byte(body)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req.Fields
}

// fakeExecutor records what Run asks of it.
type fakeExecutor struct {
	known       map[string]string       // Existing answers by key
	fail        map[string]error        // Create fails for these keys
	outstanding map[string]money.Amount // Outstanding answers by id (absent: 1,000,000)
	calls       []string
	created     map[string]string // body sent, by key
}

func (f *fakeExecutor) Outstanding(_ context.Context, res Resource, id string) (money.Amount, error) {
	f.calls = append(f.calls, "outstanding "+res.Collection+" "+id)
	if a, ok := f.outstanding[id]; ok {
		return a, nil
	}
	return money.MustParse("1000000"), nil
}

func (f *fakeExecutor) Existing(_ context.Context, op *ledgerv1.SageOperation) (string, bool, error) {
	f.calls = append(f.calls, "existing "+op.GetKey())
	id, ok := f.known[op.GetKey()]
	return id, ok, nil
}

func (f *fakeExecutor) Create(_ context.Context, op *ledgerv1.SageOperation, req Request) (string, error) {
	f.calls = append(f.calls, "create "+op.GetKey())
	if err := f.fail[op.GetKey()]; err != nil {
		return "", err
	}
	b, err := req.JSON()
	if err != nil {
		return "", err
	}
	f.created[op.GetKey()] = string(b)
	return "S-" + op.GetKey(), nil
}

func paymentWrite() *ledgerv1.SageWrite {
	return &ledgerv1.SageWrite{Operations: []*ledgerv1.SageOperation{
		{Key: "contact", Resource: ledgerv1.SageResource_SAGE_RESOURCE_CONTACT, XrefKind: "contact", Body: []byte(`{"name":"A"}`)},
		{Key: "invoice", Resource: ledgerv1.SageResource_SAGE_RESOURCE_SALES_INVOICE, Body: []byte(`{}`),
			Bindings: []*ledgerv1.FieldBinding{{Field: "contact_id", FromKey: "contact"}}},
		{Key: "payment", Resource: ledgerv1.SageResource_SAGE_RESOURCE_CONTACT_PAYMENT, Body: []byte(`{"allocated_artefacts":[{}]}`),
			Bindings: []*ledgerv1.FieldBinding{{Field: "contact_id", FromKey: "contact"},
				{Field: "allocated_artefacts.0.artefact_id", FromKey: "invoice"}}},
	}}
}

func TestRunThreadsIDsInOrder(t *testing.T) {
	t.Parallel()
	f := &fakeExecutor{known: map[string]string{"contact": "C-known"}, created: map[string]string{}}
	ids, err := Run(t.Context(), paymentWrite(), f)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"contact": "C-known", "invoice": "S-invoice", "payment": "S-payment"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	if want := []string{"existing contact", "existing invoice", "create invoice", "existing payment", "create payment"}; !reflect.DeepEqual(f.calls, want) {
		t.Errorf("calls %v, want %v", f.calls, want)
	}
	if got := f.created["payment"]; got != `{"allocated_artefacts":[{"artefact_id":"S-invoice"}],"contact_id":"C-known"}` {
		t.Errorf("payment body %s", got)
	}
}

func TestRunStopsAtTheFirstFailure(t *testing.T) {
	t.Parallel()
	cause := errors.New("HTTP 422")
	f := &fakeExecutor{fail: map[string]error{"invoice": cause}, created: map[string]string{}}
	ids, err := Run(t.Context(), paymentWrite(), f)
	var oe *OpError
	if !errors.As(err, &oe) || oe.Op.GetKey() != "invoice" || !errors.Is(err, cause) || err.Error() != `operation "invoice": HTTP 422` {
		t.Fatalf("got %v", err)
	}
	if !reflect.DeepEqual(ids, map[string]string{"contact": "S-contact"}) || len(f.calls) != 4 {
		t.Errorf("ids %v after calls %v", ids, f.calls)
	}
}

func TestRunRefusesAnUnknownResourceBeforeLookingItUp(t *testing.T) {
	t.Parallel()
	f := &fakeExecutor{known: map[string]string{"x": "S-x"}, created: map[string]string{}}
	_, err := Run(t.Context(), &ledgerv1.SageWrite{Operations: []*ledgerv1.SageOperation{{Key: "x", Resource: 999}}}, f)
	var ie *InvalidError
	if !errors.As(err, &ie) || len(f.calls) != 0 {
		t.Fatalf("got %v after %v", err, f.calls)
	}
}

func TestRunDoesNotPlanAKnownDocument(t *testing.T) {
	t.Parallel()
	// A document already in Sage is not created again, so its body and
	// bindings are never read.
	w := &ledgerv1.SageWrite{Operations: []*ledgerv1.SageOperation{{Key: "contact", Resource: ledgerv1.SageResource_SAGE_RESOURCE_CONTACT,
		Body: []byte(`not json`), Bindings: []*ledgerv1.FieldBinding{{Field: "x", FromKey: "nowhere"}}}}}
	ids, err := Run(t.Context(), w, &fakeExecutor{known: map[string]string{"contact": "C1"}})
	if err != nil || ids["contact"] != "C1" {
		t.Fatalf("%v %v", ids, err)
	}
}

func TestRunRefusesABindingToALaterOperation(t *testing.T) {
	t.Parallel()
	w := paymentWrite()
	w.Operations[0], w.Operations[1] = w.Operations[1], w.Operations[0]
	f := &fakeExecutor{created: map[string]string{}}
	_, err := Run(t.Context(), w, f)
	var ie *InvalidError
	if !errors.As(err, &ie) || ie.Key != "invoice" || len(f.created) != 0 {
		t.Fatalf("got %v, created %v", err, f.created)
	}
}

func ExamplePlan() {
	op := &ledgerv1.SageOperation{
		Key:           "payment",
		Resource:      ledgerv1.SageResource_SAGE_RESOURCE_CONTACT_PAYMENT,
		IdempotencyId: "7f3a",
		Body:          []byte(`{"total_amount":12.10,"allocated_artefacts":[{"amount":12.10}]}`),
		Bindings: []*ledgerv1.FieldBinding{
			{Field: "contact_id", FromKey: "contact"},
			{Field: "allocated_artefacts.0.artefact_id", FromKey: "invoice"},
		},
	}
	// The Sage ids of the write's earlier operations, by key.
	ids := map[string]string{"contact": "c-81", "invoice": "si-42"}
	req, err := Plan(op, ids)
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := req.JSON()
	fmt.Println("POST /" + req.Resource.Collection + " as " + req.Resource.RootKey)
	fmt.Println(string(body))
	// Output:
	// POST /contact_payments as contact_payment
	// {"allocated_artefacts":[{"amount":12.10,"artefact_id":"si-42"}],"contact_id":"c-81","idempotency_id":"7f3a","total_amount":12.10}
}

// TestSettlesCapsToOutstanding: a receipt that settles the invoice pays what
// the invoice has outstanding when it is created, at most its own amount, and
// is not created when nothing is outstanding.
func TestSettlesCapsToOutstanding(t *testing.T) {
	t.Parallel()
	settling := func() *ledgerv1.SageWrite {
		w := paymentWrite()
		pay := w.Operations[2]
		pay.Body = []byte(`{"total_amount":39.18,"allocated_artefacts":[{"amount":"39.18"}]}`)
		pay.SettlesKey = "invoice"
		return w
	}
	for _, c := range []struct {
		due, want string // want "" = no create
	}{
		{"100.00", `{"allocated_artefacts":[{"amount":"39.18","artefact_id":"S-invoice"}],"contact_id":"C-known","total_amount":39.18}`},
		{"21.18", `{"allocated_artefacts":[{"amount":"21.18","artefact_id":"S-invoice"}],"contact_id":"C-known","total_amount":21.18}`},
		{"0.00", ""},
	} {
		f := &fakeExecutor{known: map[string]string{"contact": "C-known"}, created: map[string]string{},
			outstanding: map[string]money.Amount{"S-invoice": money.MustParse(c.due)}}
		ids, err := Run(t.Context(), settling(), f)
		if err != nil {
			t.Fatalf("due %s: %v", c.due, err)
		}
		if got := f.created["payment"]; got != c.want {
			t.Errorf("due %s: sent %s, want %s", c.due, got, c.want)
		}
		if _, has := ids["payment"]; has != (c.want != "") {
			t.Errorf("due %s: ids %v", c.due, ids)
		}
		if !slices.Contains(f.calls, "outstanding sales_invoices S-invoice") {
			t.Errorf("due %s: calls %v: the invoice's outstanding amount was not read", c.due, f.calls)
		}
	}

	w := settling()
	w.Operations[2].SettlesKey = "refund"
	_, err := Run(t.Context(), w, &fakeExecutor{created: map[string]string{}})
	var inv *InvalidError
	if !errors.As(err, &inv) || !strings.Contains(err.Error(), `settles "refund"`) {
		t.Fatalf("settling an unknown operation: got %v, want an *InvalidError naming it", err)
	}
}
