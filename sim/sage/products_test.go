package sagesim

import (
	"net/http"
	"testing"
)

func TestProductsAndServices(t *testing.T) {
	t.Parallel()
	e := loggedIn(t, Config{})
	ledger := e.salesLedger()
	var p Product
	mustJSON(t, e.expect(http.StatusCreated, "POST", "/products", map[string]any{"product": map[string]any{
		"item_code": "WID-1", "description": "Widget", "sales_ledger_account_id": ledger, "purchase_ledger_account_id": ledger,
		"sales_tax_rate_id": "GB_STANDARD", "sales_prices": []any{map[string]any{"price_name": "Selling Price", "price": "20.00"}},
	}}), &p)
	if p.DisplayedAs != "WID-1 - Widget" || len(p.SalesPrices) != 1 || p.SalesPrices[0].Price.String() != "20.00" || !p.Active {
		t.Fatalf("product %+v", p)
	}
	// Required fields and a unique item code.
	errs := errorsOf(t, e.expect(http.StatusUnprocessableEntity, "POST", "/products", map[string]any{"product": map[string]any{"item_code": "wid-1"}}))
	if len(errs) != 4 || errs[0] != required("description") || errs[1].Message != "Item code has already been taken" ||
		errs[2] != required("sales_ledger_account_id") || errs[3] != required("purchase_ledger_account_id") {
		t.Fatalf("product validation: %+v", errs)
	}
	// PUT changes only what it sends.
	mustJSON(t, e.expect(http.StatusOK, "PUT", "/products/"+p.ID, map[string]any{"product": map[string]any{"description": "Blue widget"}}), &p)
	if p.ItemCode != "WID-1" || p.Description != "Blue widget" || len(p.SalesPrices) != 1 {
		t.Fatalf("updated %+v", p)
	}
	if page := e.list("/products?search=blue"); page.Total != 1 {
		t.Fatalf("search %+v", page)
	}

	var sv Service
	mustJSON(t, e.expect(http.StatusCreated, "POST", "/services", map[string]any{"service": map[string]any{
		"item_code": "SETUP", "description": "Setup", "sales_ledger_account_id": ledger,
		"sales_rates": []any{map[string]any{"rate_name": "Hourly", "rate": "50.00"}},
	}}), &sv)
	if sv.SalesRates[0].Rate.String() != "50.00" || sv.PurchaseLedgerAccount != nil {
		t.Fatalf("service %+v", sv)
	}
	e.expect(http.StatusOK, "GET", "/services/"+sv.ID, nil)

	// Lines may reference them.
	line := goodLine(ledger, "Widget", "20.00", "4.00")
	line["product_id"] = p.ID
	inv := e.createInvoice(goodInvoice(e.customer("C", "C1").ID, line))
	if inv.InvoiceLines[0].Product == nil || inv.InvoiceLines[0].Product.ID != p.ID {
		t.Fatalf("line product %+v", inv.InvoiceLines[0].Product)
	}
	if len(e.sim.Products(e.sim.LeadBusinessID())) != 1 || len(e.sim.Services(e.sim.LeadBusinessID())) != 1 {
		t.Fatal("inspection")
	}
}
