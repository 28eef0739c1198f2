package sagewriter_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
)

// person is a customer's details as the mapper sends them.
type person struct{ name, email, city string }

// customerWrite is what the mapper emits for customer.upserted of customer
// M<n>: the contact in mode CREATE_OR_UPDATE.
func (s *stack) customerWrite(runID string, n int64, p person) *ledgerv1.SageWrite {
	ref := fmt.Sprintf("M%d", n)
	contact := map[string]any{"name": p.name, "reference": ref, "contact_type_ids": []string{"CUSTOMER"}, "currency_id": "GBP",
		"main_address":        map[string]any{"address_line_1": "1 High St", "city": p.city, "postal_code": "LS1 1AA", "country_id": "GB"},
		"main_contact_person": map[string]any{"name": p.name, "email": p.email, "is_main_contact": true},
	}
	return &ledgerv1.SageWrite{
		TenantId: tenantID, SyncRunId: runID, Event: "customer.upserted", EntityType: "customer", MagentoEntityId: n,
		ResultKey: "contact",
		Operations: []*ledgerv1.SageOperation{{Key: "contact", Resource: ledgerv1.SageResource_SAGE_RESOURCE_CONTACT,
			XrefKind: "contact", XrefKey: ref, Currency: "GBP", Reference: ref, IdempotencyId: idem("contact", n),
			Mode: ledgerv1.SageWriteMode_SAGE_WRITE_MODE_CREATE_OR_UPDATE, Body: mustJSON(contact)}},
	}
}

// productWrite is what the mapper emits for product.upserted of product n.
func (s *stack) productWrite(runID string, n int64, price string) *ledgerv1.SageWrite {
	code := fmt.Sprintf("SKU-%d", n)
	item := map[string]any{"item_code": code, "description": "Mug", "sales_ledger_account_id": s.ledger,
		"purchase_ledger_account_id": s.ledger, "catalog_item_type_id": "NON_STOCK_ITEM",
		"sales_prices": []map[string]any{{"price_name": "Selling Price", "price": price}}}
	return &ledgerv1.SageWrite{
		TenantId: tenantID, SyncRunId: runID, Event: "product.upserted", EntityType: "product", MagentoEntityId: n,
		ResultKey: "product",
		Operations: []*ledgerv1.SageOperation{{Key: "product", Resource: ledgerv1.SageResource_SAGE_RESOURCE_PRODUCT,
			XrefKind: "product", XrefKey: fmt.Sprint(n), Reference: code, IdempotencyId: idem("product", n),
			Mode: ledgerv1.SageWriteMode_SAGE_WRITE_MODE_CREATE_OR_UPDATE, Body: mustJSON(item)}},
	}
}

func (s *stack) puts(resource string) int { return s.sim.CallCount("PUT /v3.1/"+resource+"/{id}", -1) }

// apiCalls counts every call to Sage's API (the token endpoint aside).
func (s *stack) apiCalls() int {
	n := 0
	for _, c := range s.sim.Calls() {
		if strings.Contains(c.Route, " /v3.1/") {
			n += c.Count
		}
	}
	return n
}

// syncedChange waits for the run's SyncResult and returns its change.
func (s *stack) syncedChange(run string) string {
	s.t.Helper()
	var change string
	devtest.Eventually(s.t, "the SyncResult of "+run, func() bool {
		for _, res := range s.results() {
			if res.SyncRunId == run && res.Status == ledgerv1.SyncStatus_SYNC_STATUS_SYNCED {
				change = res.Change
				return true
			}
		}
		return false
	})
	return change
}

// TestUpdatesReachSage: a contact whose details change is PUT once, without
// the fields Sage keeps from its creation; the same details again make no
// call; a product's new price is PUT; each run says what it did.
func TestUpdatesReachSage(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.startWriter(s.config())
	ctx := t.Context()
	ann := person{"Ann Example", "ann@example.com", "Leeds"}

	step := func(w *ledgerv1.SageWrite, wantChange string) store.Run {
		t.Helper()
		s.publish(w)
		r := s.waitRun(w.SyncRunId)
		if r.Status != store.RunSucceeded || r.Change != wantChange {
			t.Fatalf("run %s: %s %q (%s %s %s), want succeeded %q", w.Event, r.Status, r.Change, r.ErrorClass, r.ErrorCode, r.LastError, wantChange)
		}
		if got := s.syncedChange(w.SyncRunId); got != wantChange {
			t.Fatalf("SyncResult change %q, want %q", got, wantChange)
		}
		return r
	}

	created := step(s.customerWrite(s.newRun("customer.upserted", 42), 42, ann), store.ChangeCreated)
	x, err := s.st.Xref(ctx, tenantID, "contact", "M42", "GBP")
	if err != nil || x.SageID != created.SageID || len(x.Digest) != 64 {
		t.Fatalf("contact xref %+v, %v: want the created contact with the digest of its body", x, err)
	}

	// Re-sent unchanged: no call at all.
	before := s.apiCalls()
	step(s.customerWrite(s.newRun("customer.upserted", 42), 42, ann), store.ChangeUnchanged)
	if n := s.apiCalls(); n != before {
		t.Fatalf("an unchanged customer made %d Sage calls", n-before)
	}

	// Name, email and address changed: exactly one PUT, nothing created.
	ann2 := person{"Ann Newname", "ann.new@example.com", "York"}
	run := s.newRun("customer.upserted", 42)
	step(s.customerWrite(run, 42, ann2), store.ChangeUpdated)
	if p, c := s.puts("contacts"), s.posts("contacts"); p != 1 || c != 1 {
		t.Fatalf("%d contact PUTs and %d POSTs, want 1 and 1", p, c)
	}
	contacts := s.sim.Contacts(s.business)
	if len(contacts) != 1 {
		t.Fatalf("%d contacts in Sage", len(contacts))
	}
	c := contacts[0]
	if c.Name != ann2.name || c.MainContactPerson == nil || c.MainContactPerson.Email != ann2.email ||
		c.MainAddress == nil || c.MainAddress.City != "York" || c.Reference != "M42" || c.Currency.ID != "GBP" {
		t.Fatalf("contact after the update: %+v (person %+v, address %+v)", c, c.MainContactPerson, c.MainAddress)
	}
	var put store.Attempt
	for _, a := range s.attempts(run) {
		if a.Method == http.MethodPut {
			put = a
		}
	}
	if put.Path != "/contacts/"+c.ID || put.Outcome != "ok" || put.HTTPStatus != http.StatusOK {
		t.Fatalf("the PUT's attempt %+v", put)
	}
	// The new details again: unchanged.
	step(s.customerWrite(s.newRun("customer.upserted", 42), 42, ann2), store.ChangeUnchanged)
	if p := s.puts("contacts"); p != 1 {
		t.Fatalf("%d contact PUTs after an unchanged repeat", p)
	}

	// A product's price.
	step(s.productWrite(s.newRun("product.upserted", 7), 7, "12.50"), store.ChangeCreated)
	step(s.productWrite(s.newRun("product.upserted", 7), 7, "12.50"), store.ChangeUnchanged)
	step(s.productWrite(s.newRun("product.upserted", 7), 7, "14.00"), store.ChangeUpdated)
	products := s.sim.Products(s.business)
	if len(products) != 1 || len(products[0].SalesPrices) != 1 || products[0].SalesPrices[0].Price.String() != "14.00" ||
		s.puts("products") != 1 || s.posts("products") != 1 {
		t.Fatalf("products %+v after %d PUTs, %d POSTs", products, s.puts("products"), s.posts("products"))
	}
	if len(s.deadLetters()) != 0 {
		t.Fatal("dead letters")
	}
}

// TestLegacyLinkIsUpdatedOnce: a link made before digests were kept (or by an
// operator) has none, so the first upsert sends the document once and records
// it; the next makes no call.
func TestLegacyLinkIsUpdatedOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	doc, _, err := s.api().Create(ctx, "contacts", "contact",
		mustJSON(map[string]any{"name": "Linked by hand", "reference": "M5", "contact_type_ids": []string{"CUSTOMER"}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.st.PutXref(ctx, store.Xref{TenantID: tenantID, Kind: "contact", MagentoKey: "M5", Currency: "GBP",
		SageID: doc.ID, Reference: "M5"}); err != nil {
		t.Fatal(err)
	}
	s.startWriter(s.config())
	for i, want := range []string{store.ChangeUpdated, store.ChangeUnchanged} {
		run := s.newRun("customer.upserted", 5)
		s.publish(s.customerWrite(run, 5, person{"Bo Example", "bo@example.com", "Hull"}))
		if r := s.waitRun(run); r.Status != store.RunSucceeded || r.Change != want || r.SageID != doc.ID {
			t.Fatalf("upsert %d: %+v, want %s on %s", i, r, want, doc.ID)
		}
	}
	if p := s.puts("contacts"); p != 1 {
		t.Fatalf("%d PUTs, want 1", p)
	}
	if c := s.sim.Contacts(s.business); len(c) != 1 || c[0].Name != "Bo Example" {
		t.Fatalf("contacts %+v", c)
	}
}

// TestUpdateOfADeletedContact: Sage refuses to update a deleted contact; the
// run fails contact_reference_reserved with the relink command, every flag
// named.
func TestUpdateOfADeletedContact(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.startWriter(s.config())
	ctx := t.Context()
	run := s.newRun("customer.upserted", 9)
	s.publish(s.customerWrite(run, 9, person{"Cy Example", "cy@example.com", "Leeds"}))
	r := s.waitRun(run)
	if r.Status != store.RunSucceeded {
		t.Fatalf("run %+v", r)
	}
	if !s.sim.Quirks().SoftDeleteReservesReference {
		t.Fatal("the simulator's soft-delete quirk is off")
	}
	if _, err := s.api().Do(ctx, http.MethodDelete, "/contacts/"+r.SageID, nil); err != nil {
		t.Fatal(err)
	}
	run = s.newRun("customer.upserted", 9)
	s.publish(s.customerWrite(run, 9, person{"Cy Renamed", "cy@example.com", "Leeds"}))
	r = s.waitRun(run)
	want := "relink with `ledgerctl xref set --tenant acme --kind contact --key M9 --currency GBP --sage-id NEW_ID`"
	if r.Status != store.RunFailed || r.ErrorCode != sagewriter.CodeContactReferenceReserved || !strings.Contains(r.LastError, want) ||
		!strings.Contains(r.LastError, "was deleted in Sage") {
		t.Fatalf("run %s %s %q", r.Status, r.ErrorCode, r.LastError)
	}
	devtest.Eventually(t, "the write is on the DLQ", func() bool {
		dls := s.deadLetters()
		return len(dls) == 1 && dls[0].ErrorCode == sagewriter.CodeContactReferenceReserved
	})
}
