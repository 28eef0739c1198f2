package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/policy"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// TestReasonsReachMagento drives each skip reason and failure code through the
// whole pipeline and reads it back where the merchant sees it: Magento's
// sync-state row. (event_not_supported has no row: an unknown event names no
// Magento entity; services/mapper covers it on the run record.)
func TestReasonsReachMagento(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end; skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	st, err := stack.Start(ctx, stack.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const tenant = "reasons"
	if err := st.Onboard(ctx, tenant, "Reasons shop"); err != nil {
		t.Fatal(err)
	}
	baseDoc, err := st.Store.Policy(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	base, err := policy.Parse(baseDoc)
	if err != nil {
		t.Fatal(err)
	}
	baseRefs, _, _ := st.Store.RefCache(ctx, tenant, policy.RefLedgerAccounts)
	rng := rand.New(rand.NewPCG(7, 7))
	template, err := st.Shop.CreateRandomInvoice(rng, 0, false) // a guest's open invoice
	if err != nil {
		t.Fatal(err)
	}
	waitRow(t, ctx, st, "invoice", template.MagentoID, "synced")

	invoice := func(edit func(*magento.Invoice)) int64 {
		inv := template
		inv.MagentoID, inv.IncrementID, inv.OrderID, inv.OrderIncrementID = 0, "", 0, ""
		inv.Lines = append([]magento.InvoiceLine(nil), template.Lines...)
		if edit != nil {
			edit(&inv)
		}
		got, err := st.Shop.CreateInvoice(inv)
		if err != nil {
			t.Fatal(err)
		}
		return got.MagentoID
	}
	future := time.Now().Add(24 * time.Hour)
	cases := []struct {
		name       string
		policy     func(*policy.Policy)
		staleRefs  bool
		act        func() (entity string, id int64)
		status     string
		reasonCode string
	}{
		{name: "outside_sync_since", policy: func(p *policy.Policy) { p.SyncSince = &future },
			act: func() (string, int64) { return "invoice", invoice(nil) }, status: "skipped"},
		{name: "unpaid_invoice_filtered", policy: func(p *policy.Policy) { p.SyncUnpaidInvoices = false },
			act: func() (string, int64) { return "invoice", invoice(nil) }, status: "skipped"},
		{name: "website_filtered", policy: func(p *policy.Policy) { p.WebsiteFilter = []int64{99} },
			act: func() (string, int64) { return "invoice", invoice(nil) }, status: "skipped"},
		{name: "store_filtered", policy: func(p *policy.Policy) { p.StoreFilter = []int64{99} },
			act: func() (string, int64) { return "invoice", invoice(nil) }, status: "skipped"},
		{name: "zero_value_invoice", act: func() (string, int64) {
			return "invoice", invoice(func(inv *magento.Invoice) {
				zero := money.Number{}
				for i := range inv.Lines {
					l := &inv.Lines[i]
					l.UnitPrice, l.LineSubtotal, l.LineTax, l.LineTotal, l.TaxRate = zero, zero, zero, zero, nil
				}
				inv.Subtotal, inv.TaxAmount, inv.ShippingAmount, inv.ShippingTaxAmount, inv.GrandTotal = zero, zero, zero, zero, zero
			})
		}, status: "skipped"},
		{name: "payment_method_not_mapped", policy: func(p *policy.Policy) {
			p.PaymentMethodMap = map[string]string{"purchaseorder": ""}
		}, act: func() (string, int64) {
			id := invoice(func(inv *magento.Invoice) { inv.PaymentMethod = "purchaseorder" })
			waitRow(t, ctx, st, "invoice", id, "synced")
			if err := st.Shop.PayInvoice(id); err != nil {
				t.Fatal(err)
			}
			return "invoice", id
		}, status: "skipped"},
		{name: "product_type_not_supported", policy: func(p *policy.Policy) { p.SyncProducts = true },
			act: func() (string, int64) {
				p, err := st.Shop.UpsertProduct(magentosim.Product{SKU: "KIT-1", Name: "Starter kit", ProductType: "bundle"})
				if err != nil {
					t.Fatal(err)
				}
				return "product", p.MagentoID
			}, status: "skipped"},
		{name: "sync_filter_excluded", act: func() (string, int64) {
			p, err := st.Shop.UpsertProduct(magentosim.Product{SKU: "MUG-1", Name: "Mug", ProductType: "simple"})
			if err != nil {
				t.Fatal(err)
			}
			return "product", p.MagentoID
		}, status: "skipped"},
		{name: "totals_mismatch", act: func() (string, int64) {
			return "invoice", invoice(func(inv *magento.Invoice) {
				inv.GrandTotal = money.Number{Amount: inv.GrandTotal.Add(money.MustParse("7.00"))}
			})
		}, status: "failed"},
		{name: "ref_cache_stale", staleRefs: true,
			act: func() (string, int64) { return "invoice", invoice(nil) }, status: "failed"},
		{name: "magento_entity_not_found", act: func() (string, int64) {
			if err := st.Shop.Enqueue(magentosim.Event{Name: "creditmemo.created", IdempotencyKey: "creditmemo.created:777",
				MagentoEntityID: 777, WebsiteID: 1, StoreID: 1, MirrorProvider: magento.ProviderSage}); err != nil {
				t.Fatal(err)
			}
			return "creditmemo", 777
		}, status: "failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pol := base
			if c.policy != nil {
				c.policy(&pol)
			}
			if err := st.Store.SetPolicy(ctx, tenant, pol.JSON()); err != nil {
				t.Fatal(err)
			}
			refs := baseRefs
			if c.staleRefs {
				refs = []byte(`[{"id":"0000000000000000000000000000dead","displayed_as":"Another account"}]`)
			}
			if err := st.Store.SetRefCache(ctx, tenant, policy.RefLedgerAccounts, refs); err != nil {
				t.Fatal(err)
			}
			entity, id := c.act()
			row := waitRow(t, ctx, st, entity, id, c.status)
			got := row.SkipReason
			if c.status == "failed" {
				got = row.ErrorCode
			}
			if got == nil || *got != c.name {
				t.Fatalf("%s %d: sync-state %s with reason/code %v, want %s", entity, id, row.SyncStatus, deref(got), c.name)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

// waitRow waits until the Magento sync-state row of an entity has status.
func waitRow(t *testing.T, ctx context.Context, st *stack.Stack, entity string, id int64, status string) magentosim.SyncStateRow {
	t.Helper()
	var row magentosim.SyncStateRow
	devtest.Eventually(t, entity+" sync-state "+status, func() bool {
		var ok bool
		row, ok = st.Shop.SyncState(entity, id)
		return ok && row.SyncStatus == status
	}, devtest.Until(ctx), devtest.Explain(func() string { return fmt.Sprintf("row %+v", row) }))
	return row
}
