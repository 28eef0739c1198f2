package sagewrite

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/ledgersync/ledger/libs/money"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// fakeUpdater is an Updater over an in-memory entity_xref: documents by
// operation key, with the digest last written.
type fakeUpdater struct {
	known   map[string]Known
	calls   []string
	sent    map[string]map[string]any // the body of each create or update, by key
	failPut error
}

func newFakeUpdater() *fakeUpdater {
	return &fakeUpdater{known: map[string]Known{}, sent: map[string]map[string]any{}}
}

func (f *fakeUpdater) Existing(ctx context.Context, op *ledgerv1.SageOperation) (string, bool, error) {
	d, ok, err := f.Known(ctx, op)
	return d.ID, ok, err
}

func (f *fakeUpdater) Known(_ context.Context, op *ledgerv1.SageOperation) (Known, bool, error) {
	d, ok := f.known[op.GetKey()]
	return d, ok, nil
}

func (f *fakeUpdater) Create(_ context.Context, op *ledgerv1.SageOperation, req Request) (string, error) {
	f.calls = append(f.calls, "POST "+op.GetKey())
	f.sent[op.GetKey()] = req.Fields
	id := "S-" + op.GetKey()
	f.known[op.GetKey()] = Known{ID: id, Digest: req.Digest}
	return id, nil
}

func (f *fakeUpdater) Update(_ context.Context, op *ledgerv1.SageOperation, doc Known, req Request) error {
	f.calls = append(f.calls, "PUT "+op.GetKey()+" "+doc.ID)
	if f.failPut != nil {
		return f.failPut
	}
	if !req.Update {
		return errors.New("Update got a create request")
	}
	f.sent[op.GetKey()] = req.Fields
	f.known[op.GetKey()] = Known{ID: doc.ID, Digest: req.Digest}
	return nil
}

func (f *fakeUpdater) Outstanding(context.Context, Resource, string) (money.Amount, error) {
	return money.MustParse("1000000"), nil
}

// customerWrite is a customer.upserted write of run: the contact in mode
// CREATE_OR_UPDATE with body.
func customerWrite(run, body string) *ledgerv1.SageWrite {
	return &ledgerv1.SageWrite{SyncRunId: run, Operations: []*ledgerv1.SageOperation{{
		Key: "contact", Resource: ledgerv1.SageResource_SAGE_RESOURCE_CONTACT, XrefKind: "contact", XrefKey: "M42",
		Currency: "GBP", Reference: "M42", IdempotencyId: "0123456789abcdef0123456789abcdef",
		Mode: ledgerv1.SageWriteMode_SAGE_WRITE_MODE_CREATE_OR_UPDATE, Body: []byte(body),
	}}}
}

const (
	ann    = `{"name":"Ann Example","reference":"M42","currency_id":"GBP","contact_type_ids":["CUSTOMER"],"main_address":{"city":"Leeds"}}`
	annNew = `{"name":"Ann Newname","reference":"M42","currency_id":"GBP","contact_type_ids":["CUSTOMER"],"main_address":{"city":"York"}}`
	// annReordered is ann with its keys in another order and the same numbers.
	annReordered = `{"main_address":{"city":"Leeds"},"contact_type_ids":["CUSTOMER"],"currency_id":"GBP","reference":"M42","name":"Ann Example"}`
)

func TestExecuteCreatesThenUpdatesOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	f := newFakeUpdater()
	res, err := Execute(t.Context(), customerWrite("run-1", ann), f)
	if err != nil || res.Change() != ChangeCreated || res.IDs["contact"] != "S-contact" {
		t.Fatalf("first write: %+v %v", res, err)
	}
	created := f.known["contact"].Digest
	if created == "" {
		t.Fatal("a created document of a CREATE_OR_UPDATE operation has no digest to record")
	}

	// The same details again, in another key order: no call.
	for _, body := range []string{ann, annReordered} {
		res, err = Execute(t.Context(), customerWrite("run-2", body), f)
		if err != nil || res.Change() != ChangeUnchanged || res.IDs["contact"] != "S-contact" {
			t.Fatalf("unchanged write: %+v %v", res, err)
		}
	}
	if want := []string{"POST contact"}; !slices.Equal(f.calls, want) {
		t.Fatalf("calls %v, want %v", f.calls, want)
	}

	// New details: one PUT, without the fields Sage keeps from the creation,
	// with an idempotency_id of its own.
	res, err = Execute(t.Context(), customerWrite("run-3", annNew), f)
	if err != nil || res.Change() != ChangeUpdated || !reflect.DeepEqual(res.Changes, map[string]string{"contact": ChangeUpdated}) {
		t.Fatalf("changed write: %+v %v", res, err)
	}
	put := f.sent["contact"]
	if _, ok := put["reference"]; ok {
		t.Errorf("the PUT sends reference: %v", put)
	}
	if _, ok := put["currency_id"]; ok {
		t.Errorf("the PUT sends currency_id: %v", put)
	}
	if put["name"] != "Ann Newname" || put["idempotency_id"] == "0123456789abcdef0123456789abcdef" || len(put["idempotency_id"].(string)) != 32 {
		t.Errorf("PUT body %v", put)
	}
	if f.known["contact"].Digest == created {
		t.Error("the digest was not moved on after the update")
	}
	// And again: nothing.
	if res, err = Execute(t.Context(), customerWrite("run-4", annNew), f); err != nil || res.Change() != ChangeUnchanged {
		t.Fatalf("repeat after the update: %+v %v", res, err)
	}
	if want := []string{"POST contact", "PUT contact S-contact"}; !slices.Equal(f.calls, want) {
		t.Fatalf("calls %v, want %v", f.calls, want)
	}
}

// TestExecuteUpdatesALinkWithoutDigestOnce: a link made before digests were
// kept (or by an operator's relink) is sent once, then compared.
func TestExecuteUpdatesALinkWithoutDigestOnce(t *testing.T) {
	t.Parallel()
	f := newFakeUpdater()
	f.known["contact"] = Known{ID: "S-legacy"}
	for i, want := range []string{ChangeUpdated, ChangeUnchanged} {
		res, err := Execute(t.Context(), customerWrite("run", ann), f)
		if err != nil || res.Change() != want {
			t.Fatalf("write %d: %+v %v, want %s", i, res, err, want)
		}
	}
	if want := []string{"PUT contact S-legacy"}; !slices.Equal(f.calls, want) {
		t.Fatalf("calls %v, want %v", f.calls, want)
	}
}

// TestExecuteLeavesCreateOnlyOperationsAlone: an operation without the mode,
// or an Executor that cannot update, never updates: the known document is
// the result, unchanged.
func TestExecuteLeavesCreateOnlyOperationsAlone(t *testing.T) {
	t.Parallel()
	f := newFakeUpdater()
	f.known["contact"] = Known{ID: "S-old", Digest: "stale"}
	w := customerWrite("run", annNew)
	w.Operations[0].Mode = ledgerv1.SageWriteMode_SAGE_WRITE_MODE_UNSPECIFIED
	res, err := Execute(t.Context(), w, f)
	if err != nil || res.Change() != ChangeUnchanged || res.IDs["contact"] != "S-old" || len(f.calls) != 0 {
		t.Fatalf("create-only operation: %+v %v after calls %v", res, err, f.calls)
	}
	// A plain Executor (the fake of sagewrite_test.go) with the mode set.
	plain := &fakeExecutor{known: map[string]string{"contact": "C-known"}, created: map[string]string{}}
	res, err = Execute(t.Context(), customerWrite("run", annNew), plain)
	if err != nil || res.Change() != ChangeUnchanged || res.IDs["contact"] != "C-known" || len(plain.created) != 0 {
		t.Fatalf("plain executor: %+v %v", res, err)
	}
}

func TestExecuteStopsAtAFailedUpdate(t *testing.T) {
	t.Parallel()
	f := newFakeUpdater()
	f.known["contact"] = Known{ID: "S-1", Digest: "old"}
	f.failPut = errors.New("HTTP 404")
	w := customerWrite("run", ann)
	w.Operations = append(w.Operations, &ledgerv1.SageOperation{Key: "invoice",
		Resource: ledgerv1.SageResource_SAGE_RESOURCE_SALES_INVOICE, Body: []byte(`{}`),
		Bindings: []*ledgerv1.FieldBinding{{Field: "contact_id", FromKey: "contact"}}})
	res, err := Execute(t.Context(), w, f)
	var oe *OpError
	if !errors.As(err, &oe) || oe.Op.GetKey() != "contact" || !errors.Is(err, f.failPut) {
		t.Fatalf("got %+v %v", res, err)
	}
	if len(res.IDs) != 0 || f.known["contact"].Digest != "old" || !slices.Equal(f.calls, []string{"PUT contact S-1"}) {
		t.Fatalf("after a failed PUT: ids %v, digest %q, calls %v", res.IDs, f.known["contact"].Digest, f.calls)
	}
}

// TestResultChange: created wins over updated, updated over unchanged.
func TestResultChange(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		changes map[string]string
		want    string
	}{
		{nil, ChangeUnchanged},
		{map[string]string{"contact": ChangeUnchanged, "invoice": ChangeUnchanged}, ChangeUnchanged},
		{map[string]string{"contact": ChangeUpdated, "invoice": ChangeUnchanged}, ChangeUpdated},
		{map[string]string{"contact": ChangeUpdated, "invoice": ChangeCreated}, ChangeCreated},
	} {
		if got := (Result{Changes: c.changes}).Change(); got != c.want {
			t.Errorf("%v: %s, want %s", c.changes, got, c.want)
		}
	}
}

// TestPlanUpdate: the update body and its digest ignore key order and the
// create-only fields, keep numbers as sent, and the PUT's idempotency_id is
// per run and body.
func TestPlanUpdate(t *testing.T) {
	t.Parallel()
	op := customerWrite("run", ann).Operations[0]
	a, err := PlanUpdate(op, nil, "run-a")
	if err != nil {
		t.Fatal(err)
	}
	op2 := customerWrite("run", `{"name":"Ann Example","contact_type_ids":["CUSTOMER"],"main_address":{"city":"Leeds"},"reference":"OTHER","currency_id":"EUR"}`).Operations[0]
	b, err := PlanUpdate(op2, nil, "run-a")
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest == "" || a.Digest != b.Digest || a.Fields["idempotency_id"] != b.Fields["idempotency_id"] {
		t.Errorf("create-only fields change the update: %s %s", a.Digest, b.Digest)
	}
	if c, _ := PlanUpdate(op, nil, "run-b"); c.Fields["idempotency_id"] == a.Fields["idempotency_id"] || c.Digest != a.Digest {
		t.Errorf("another run's PUT has the same idempotency_id %v", c.Fields["idempotency_id"])
	}
	prod := &ledgerv1.SageOperation{Key: "product", Resource: ledgerv1.SageResource_SAGE_RESOURCE_PRODUCT,
		Body: []byte(`{"item_code":"MUG","catalog_item_type_id":"STOCK_ITEM","sales_prices":[{"price":12.50}]}`)}
	p, err := PlanUpdate(prod, nil, "run")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := p.JSON()
	if string(body) != `{"item_code":"MUG","sales_prices":[{"price":12.50}]}` {
		t.Errorf("product update body %s", body)
	}
	if !p.Update {
		t.Errorf("not an update request: %+v", p)
	}
}
