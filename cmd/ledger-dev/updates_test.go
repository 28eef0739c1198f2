package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/policy"
	"github.com/ledgersync/ledger/libs/store"
	magentosim "github.com/ledgersync/ledger/sim/magento"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// TestUpdatesReachSage runs the whole pipeline for edits: a customer and a
// product are synced, then the customer's name, address and email and the
// product's price are edited in the Magento simulator. Each edit must reach
// Sage as exactly one PUT, with the new values in the Sage simulator and the
// fields Sage keeps from the creation (reference, currency) untouched; a
// customer sent again unchanged must make no Sage call. The runs and the
// shop's sync-state rows say updated / unchanged.
//
// The shop drops a re-save while the first event's outbox row exists, and
// Ledger refuses a repeat of its Idempotency-Key inside the dedupe window
// (wire §1.3: every event means "refetch the current state", and there is no
// event per change), so each edit here is sent as the event a shop sends once
// its first row is gone: a new outbox row, with a key Ledger has not seen.
func TestUpdatesReachSage(t *testing.T) {
	if testing.Short() {
		t.Skip("the updates pipeline run is skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	st, _ := startStack(t, ctx, stack.Options{})
	defer st.Close()
	const tenant = "updates-shop"
	if err := st.Onboard(ctx, tenant, "Updates shop"); err != nil {
		t.Fatalf("onboarding: %v", err)
	}
	syncProducts(t, ctx, st, tenant)
	shop, sage, biz := st.Shop, st.Sage, st.Sage.LeadBusinessID()

	// sent counts the events delivered, so each step waits for its own run.
	sent := 0
	deliver := func(event string, id int64) store.Run {
		t.Helper()
		sent++
		if err := shop.Enqueue(magentosim.Event{Name: event, IdempotencyKey: fmt.Sprintf("%s:%d:%d", event, id, sent),
			MagentoEntityID: id, WebsiteID: 1, Payload: struct{}{}}); err != nil {
			t.Fatal(err)
		}
		return waitRuns(t, ctx, st, tenant, magento.EntityType(event), id, sent)
	}

	// The first sync creates the contact and the product.
	home := magento.Address{Kind: "billing", Street: []string{"1 High Street"}, City: "Leeds", Postcode: "LS1 1AA", CountryID: "GB"}
	cust, err := shop.UpsertCustomer(magento.Contact{Email: "ann@example.com", FirstName: "Ann", LastName: "Example",
		WebsiteID: 1, Addresses: []magento.Address{home}})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := shop.UpsertProduct(magentosim.Product{SKU: "MUG-1", Name: "Ledger Mug", ProductType: "simple",
		Price: &money.Number{Amount: money.MustParse("12.50")}})
	if err != nil {
		t.Fatal(err)
	}
	// The observers queued customer.upserted and product.upserted; wait for both.
	sent = 2
	cRun := waitRuns(t, ctx, st, tenant, "customer", cust.MagentoID, sent)
	pRun := waitRuns(t, ctx, st, tenant, "product", prod.MagentoID, sent)
	for _, r := range []store.Run{cRun, pRun} {
		if r.Status != store.RunSucceeded || r.Change != store.ChangeCreated {
			t.Fatalf("first sync of %s %d: %s %q %s", r.EntityType, r.MagentoEntityID, r.Status, r.Change, r.LastError)
		}
	}
	contacts, products := sage.Contacts(biz), sage.Products(biz)
	if len(contacts) != 1 || len(products) != 1 {
		t.Fatalf("Sage holds %d contacts and %d products, want 1 and 1", len(contacts), len(products))
	}
	contactID, ref, currency := contacts[0].ID, contacts[0].Reference, contacts[0].Currency.ID
	puts := func(resource string) int { return sage.CallCount("PUT /v3.1/"+resource+"/{id}", -1) }
	posts := func(resource string) int { return sage.CallCount("POST /v3.1/"+resource, -1) }

	// Sent again unchanged: no Sage call at all.
	before := sageAPICalls(sage)
	if r := deliver("customer.upserted", cust.MagentoID); r.Status != store.RunSucceeded || r.Change != store.ChangeUnchanged {
		t.Fatalf("unchanged customer: %s %q %s", r.Status, r.Change, r.LastError)
	}
	if n := sageAPICalls(sage) - before; n != 0 {
		t.Fatalf("an unchanged customer made %d Sage calls", n)
	}
	waitSyncedRow(t, ctx, shop, "customer", cust.MagentoID, "unchanged")

	// Name, address and email edited in Magento.
	cust.FirstName, cust.LastName, cust.Email = "Annabel", "Newname", "annabel@example.com"
	cust.Addresses = []magento.Address{{Kind: "billing", Street: []string{"2 Low Road"}, City: "York", Postcode: "YO1 7HH", CountryID: "GB"}}
	if _, err := shop.UpsertCustomer(cust); err != nil {
		t.Fatal(err)
	}
	if r := deliver("customer.upserted", cust.MagentoID); r.Status != store.RunSucceeded || r.Change != store.ChangeUpdated ||
		r.SageID != contactID {
		t.Fatalf("edited customer: %s %q %s (sage id %s, want %s)", r.Status, r.Change, r.LastError, r.SageID, contactID)
	}
	if p, c := puts("contacts"), posts("contacts"); p != 1 || c != 1 {
		t.Fatalf("%d contact PUTs and %d POSTs, want exactly 1 and 1", p, c)
	}
	contacts = sage.Contacts(biz)
	if len(contacts) != 1 {
		t.Fatalf("%d contacts in Sage", len(contacts))
	}
	c := contacts[0]
	if c.Name != "Annabel Newname" || c.MainContactPerson == nil || c.MainContactPerson.Email != "annabel@example.com" ||
		c.MainAddress == nil || c.MainAddress.AddressLine1 != "2 Low Road" || c.MainAddress.City != "York" ||
		c.MainAddress.PostalCode != "YO1 7HH" || c.Reference != ref || c.Currency.ID != currency {
		t.Fatalf("Sage contact after the edit: name %q, person %+v, address %+v, reference %q (was %q), currency %s (was %s)",
			c.Name, c.MainContactPerson, c.MainAddress, c.Reference, ref, c.Currency.ID, currency)
	}
	waitSyncedRow(t, ctx, shop, "customer", cust.MagentoID, "updated")

	// The price edited in Magento.
	prod.Price = &money.Number{Amount: money.MustParse("14.00")}
	if _, err := shop.UpsertProduct(prod); err != nil {
		t.Fatal(err)
	}
	if r := deliver("product.upserted", prod.MagentoID); r.Status != store.RunSucceeded || r.Change != store.ChangeUpdated {
		t.Fatalf("edited product: %s %q %s", r.Status, r.Change, r.LastError)
	}
	if p, c := puts("products"), posts("products"); p != 1 || c != 1 {
		t.Fatalf("%d product PUTs and %d POSTs, want exactly 1 and 1", p, c)
	}
	products = sage.Products(biz)
	if len(products) != 1 || len(products[0].SalesPrices) != 1 || !products[0].SalesPrices[0].Price.Equal(money.MustParse("14.00")) {
		t.Fatalf("Sage product after the edit: %+v", products)
	}
	waitSyncedRow(t, ctx, shop, "product", prod.MagentoID, "updated")

	// And the edited customer once more, unchanged: nothing.
	before = sageAPICalls(sage)
	if r := deliver("customer.upserted", cust.MagentoID); r.Change != store.ChangeUnchanged || sageAPICalls(sage) != before {
		t.Fatalf("the edited customer sent again: %s %q, %d Sage calls", r.Status, r.Change, sageAPICalls(sage)-before)
	}
	if p := puts("contacts"); p != 1 {
		t.Fatalf("%d contact PUTs, want 1", p)
	}
	if d := st.SageDuplicates(); d != 0 {
		t.Errorf("%d duplicate documents in Sage", d)
	}
}

// syncProducts turns sync_products on, with a purchase account (Sage requires
// one on products): the cost-of-sales account (nominal 5000) when the
// reference cache has it, else the default sales account.
func syncProducts(t *testing.T, ctx context.Context, st *stack.Stack, tenant string) {
	t.Helper()
	doc, err := st.Store.Policy(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := st.Store.RefCache(ctx, tenant, policy.RefLedgerAccounts)
	if err != nil {
		t.Fatal(err)
	}
	var accounts []struct {
		ID          string `json:"id"`
		NominalCode int    `json:"nominal_code"`
	}
	if err := json.Unmarshal(raw, &accounts); err != nil {
		t.Fatalf("ledger accounts in the reference cache: %v", err)
	}
	// The cache holds the sales accounts; the simulator takes any account of
	// the business as a product's purchase account.
	pol.PurchaseLedgerAccountID = pol.DefaultLedgerAccountID
	for _, a := range accounts {
		if a.NominalCode == 5000 {
			pol.PurchaseLedgerAccountID = a.ID
		}
	}
	if pol.PurchaseLedgerAccountID == "" {
		t.Fatalf("no ledger account for products among %d in the reference cache", len(accounts))
	}
	pol.SyncProducts = true
	if err := st.Store.SetPolicy(ctx, tenant, pol.JSON()); err != nil {
		t.Fatal(err)
	}
}

// waitRuns waits until the tenant has n finished runs and returns the newest
// of the entity.
func waitRuns(t *testing.T, ctx context.Context, st *stack.Stack, tenant, entityType string, id int64, n int) store.Run {
	t.Helper()
	devtest.Eventually(t, fmt.Sprintf("%d runs finished", n), func() bool {
		c, err := st.Store.RunCounts(ctx, tenant)
		return err == nil && c.Pending == 0 && c.Succeeded+c.Skipped+c.Failed >= int64(n)
	}, devtest.Until(ctx))
	r, err := st.Store.LatestRun(ctx, tenant, entityType, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitSyncedRow waits for the shop's sync-state row of the entity to say synced with
// skip_reason detail.
func waitSyncedRow(t *testing.T, ctx context.Context, shop *magentosim.Shop, entityType string, id int64, detail string) {
	t.Helper()
	devtest.Eventually(t, fmt.Sprintf("the sync-state row of %s %d says synced, %s", entityType, id, detail), func() bool {
		row, ok := shop.SyncState(entityType, id)
		return ok && row.SyncStatus == magentosim.SyncSynced && row.SkipReason != nil && *row.SkipReason == detail
	}, devtest.Until(ctx))
}

// sageAPICalls counts every call made to the Sage simulator's API (the token
// endpoint aside).
func sageAPICalls(sage *sagesim.Server) int {
	n := 0
	for _, c := range sage.Calls() {
		if strings.Contains(c.Route, " /v3.1/") {
			n += c.Count
		}
	}
	return n
}
