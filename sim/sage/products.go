package sagesim

import (
	"cmp"

	"github.com/ledgersync/ledger/libs/money"
)

// Product is a stock or non-stock product (reference data for invoice lines).
type Product struct {
	CatalogItem
	SalesPrices     []ProductSalesPrice `json:"sales_prices"`
	CatalogItemType Base                `json:"catalog_item_type"`
}

// ProductSalesPrice is one of a product's selling prices.
type ProductSalesPrice struct {
	ID                    string       `json:"id"`
	DisplayedAs           string       `json:"displayed_as"`
	PriceName             string       `json:"price_name"`
	Price                 money.Amount `json:"price"`
	PriceIncludesTax      bool         `json:"price_includes_tax"`
	ProductSalesPriceType Base         `json:"product_sales_price_type"`
}

type productInput struct {
	catalogInput
	CatalogItemTypeID *string `json:"catalog_item_type_id"`
	SalesPrices       *[]struct {
		PriceName               *string       `json:"price_name"`
		Price                   *money.Amount `json:"price"`
		PriceIncludesTax        bool          `json:"price_includes_tax"`
		ProductSalesPriceTypeID *string       `json:"product_sales_price_type_id"`
	} `json:"sales_prices"`
}

var catalogItemTypes = map[string]string{"STOCK_ITEM": "Stock", "NON_STOCK_ITEM": "Non-stock"}

// Products returns a business's products in creation order. An unknown
// business gives nil.
func (s *Server) Products(businessID string) []Product {
	return snapshot(s, businessID, productKind.kind)
}

// productKind: a product also needs purchase_ledger_account_id; it has a
// catalog item type (STOCK_ITEM unless sent) and sales prices.
var productKind = &catalogKind[*Product, *productInput]{
	kind: &kind[*Product]{root: "product", resource: "products",
		store: func(b *business) *store[*Product] { return &b.products }, match: catalogMatch[*Product]},
	purchaseRequired: true,
	newInput:         func() *productInput { return new(productInput) },
	check: func(in *productInput) []APIError {
		var errs problems
		if t := str(in.CatalogItemTypeID); t != "" && catalogItemTypes[t] == "" {
			errs = append(errs, apiErr(CodeRecordInvalid, "is not included in the list", "catalog_item_type_id"))
		}
		for _, p := range valueOr(in.SalesPrices, nil) {
			errs.when(p.Price == nil, required("sales_prices.price"))
		}
		return errs
	},
	build: func(s *Server, item CatalogItem, in *productInput) *Product {
		typ := cmp.Or(str(in.CatalogItemTypeID), "STOCK_ITEM")
		p := &Product{CatalogItem: item, CatalogItemType: Base{ID: typ, DisplayedAs: catalogItemTypes[typ], Path: "/catalog_item_types/" + typ}}
		for _, sp := range valueOr(in.SalesPrices, nil) {
			name, pt := cmp.Or(str(sp.PriceName), "Selling Price"), cmp.Or(str(sp.ProductSalesPriceTypeID), "SELLING_PRICE") // [I]
			p.SalesPrices = append(p.SalesPrices, ProductSalesPrice{
				ID: s.newID(), DisplayedAs: name, PriceName: name, Price: *sp.Price, PriceIncludesTax: sp.PriceIncludesTax,
				ProductSalesPriceType: Base{ID: pt, DisplayedAs: name, Path: "/product_sales_price_types/" + pt},
			})
		}
		return p
	},
}
