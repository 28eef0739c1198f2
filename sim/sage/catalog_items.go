package sagesim

import (
	"cmp"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// CatalogItem is what products and services, which lines of sales documents
// may name, share.
type CatalogItem struct {
	Record
	Deletable             bool         `json:"deletable"`
	ItemCode              string       `json:"item_code"`
	Description           string       `json:"description"`
	Notes                 string       `json:"notes"`
	SalesLedgerAccount    *Base        `json:"sales_ledger_account"`
	SalesTaxRate          *Base        `json:"sales_tax_rate"`
	PurchaseLedgerAccount *Base        `json:"purchase_ledger_account"`
	PurchaseTaxRate       *Base        `json:"purchase_tax_rate"`
	CostPrice             money.Amount `json:"cost_price"`
	SourceGUID            string       `json:"source_guid"`
	PurchaseDescription   string       `json:"purchase_description"`
	Active                bool         `json:"active"`
}

func (c *CatalogItem) catalog() *CatalogItem { return c }

// Product is a stock or non-stock product.
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

// Service is a service item.
type Service struct {
	CatalogItem
	SalesRates []ServiceRate `json:"sales_rates"`
}

// ServiceRate is one of a service's selling rates.
type ServiceRate struct {
	ID              string       `json:"id"`
	DisplayedAs     string       `json:"displayed_as"`
	RateName        string       `json:"rate_name"`
	Rate            money.Amount `json:"rate"`
	RateIncludesTax bool         `json:"rate_includes_tax"`
	ServiceRateType Base         `json:"service_rate_type"`
}

// catalogInput holds what products and services share on POST and PUT.
type catalogInput struct {
	ItemCode                *string       `json:"item_code"`
	Description             *string       `json:"description"`
	Notes                   *string       `json:"notes"`
	SalesLedgerAccountID    *string       `json:"sales_ledger_account_id"`
	SalesTaxRateID          *string       `json:"sales_tax_rate_id"`
	PurchaseLedgerAccountID *string       `json:"purchase_ledger_account_id"`
	PurchaseTaxRateID       *string       `json:"purchase_tax_rate_id"`
	CostPrice               *money.Amount `json:"cost_price"`
	SourceGUID              *string       `json:"source_guid"`
	PurchaseDescription     *string       `json:"purchase_description"`
	Active                  *bool         `json:"active"`
}

func (in *catalogInput) shared() *catalogInput { return in }

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

type serviceInput struct {
	catalogInput
	SalesRates *[]struct {
		RateName          *string       `json:"rate_name"`
		Rate              *money.Amount `json:"rate"`
		RateIncludesTax   bool          `json:"rate_includes_tax"`
		ServiceRateTypeID *string       `json:"service_rate_type_id"`
	} `json:"sales_rates"`
}

// Products returns a business's products, as Contacts does contacts.
func (s *Server) Products(businessID string) []Product {
	return snapshot(s, businessID, productKind.kind)
}

// Services returns a business's services, as Contacts does contacts.
func (s *Server) Services(businessID string) []Service {
	return snapshot(s, businessID, serviceKind.kind)
}

var catalogItemTypes = map[string]string{"STOCK_ITEM": "Stock", "NON_STOCK_ITEM": "Non-stock"}

// productKind: a product needs purchase_ledger_account_id and has a catalog
// item type (STOCK_ITEM unless sent) and sales prices.
var productKind = &catalogKind[*Product, *productInput]{
	kind: &kind[*Product]{root: "product", resource: "products",
		store: func(b *business) *store[*Product] { return &b.products }, match: catalogMatch[*Product]},
	purchaseRequired: true,
	newInput:         func() *productInput { return new(productInput) },
	check: func(in *productInput) (errs problems) {
		t := str(in.CatalogItemTypeID)
		errs.when(t != "" && catalogItemTypes[t] == "", apiErr(CodeRecordInvalid, "is not included in the list", "catalog_item_type_id"))
		for _, p := range valueOr(in.SalesPrices, nil) {
			errs.when(p.Price == nil, required("sales_prices.price"))
		}
		return errs
	},
	build: func(s *Server, item CatalogItem, in *productInput) *Product {
		p := &Product{CatalogItem: item, CatalogItemType: named("catalog_item_types", catalogItemTypes, cmp.Or(str(in.CatalogItemTypeID), "STOCK_ITEM"))}
		for _, sp := range valueOr(in.SalesPrices, nil) {
			name, pt := cmp.Or(str(sp.PriceName), "Selling Price"), cmp.Or(str(sp.ProductSalesPriceTypeID), "SELLING_PRICE") // [I]
			p.SalesPrices = append(p.SalesPrices, ProductSalesPrice{ID: s.newID(), DisplayedAs: name, PriceName: name, Price: *sp.Price,
				PriceIncludesTax: sp.PriceIncludesTax, ProductSalesPriceType: link("product_sales_price_types", pt, name)})
		}
		return p
	},
}

// serviceKind: a service has sales rates and may omit its purchase ledger.
var serviceKind = &catalogKind[*Service, *serviceInput]{
	kind: &kind[*Service]{root: "service", resource: "services",
		store: func(b *business) *store[*Service] { return &b.services }, match: catalogMatch[*Service]},
	newInput: func() *serviceInput { return new(serviceInput) },
	check: func(in *serviceInput) (errs problems) {
		for _, rt := range valueOr(in.SalesRates, nil) {
			errs.when(rt.Rate == nil, required("sales_rates.rate"))
		}
		return errs
	},
	build: func(s *Server, item CatalogItem, in *serviceInput) *Service {
		sv := &Service{CatalogItem: item}
		for _, rt := range valueOr(in.SalesRates, nil) {
			name, typ := cmp.Or(str(rt.RateName), "Rate"), cmp.Or(str(rt.ServiceRateTypeID), "RATE") // [I]
			sv.SalesRates = append(sv.SalesRates, ServiceRate{ID: s.newID(), DisplayedAs: name, RateName: name, Rate: *rt.Rate,
				RateIncludesTax: rt.RateIncludesTax, ServiceRateType: link("service_rate_types", typ, name)})
		}
		return sv
	},
}

// catalogKind is what sets products and services apart.
type catalogKind[D interface {
	document
	catalog() *CatalogItem
}, In interface{ shared() *catalogInput }] struct {
	*kind[D]
	purchaseRequired bool
	newInput         func() In
	// check returns the kind's own 422 entries; build completes a valid item.
	check func(in In) problems
	build func(s *Server, item CatalogItem, in In) D
}

// catalogMatch filters lists on search (item code or description) and active.
func catalogMatch[D interface{ catalog() *CatalogItem }](q url.Values, lp listParams) func(D) bool {
	active := q.Get("active")
	return func(d D) bool {
		c := d.catalog()
		return (active == "" || (active == "true") == c.Active) &&
			(lp.search == "" || containsFold(c.ItemCode, lp.search) || containsFold(c.Description, lp.search))
	}
}

// routes registers the kind's routes; a PUT changes only the fields it sends
// (prices and rates as a whole).
func (k *catalogKind[D, In]) routes(s *Server, mux *http.ServeMux) {
	w := &upsert[D, In]{kind: k.kind, newInput: k.newInput,
		save: func(b *business, in In, prev D, update bool, _ Quirks, now time.Time) (D, []APIError) {
			self := ""
			if update {
				self = prev.record().ID
			}
			// Item codes are unique per kind, compared case-insensitively [I].
			item, errs := resolveCatalogLocked(b, in.shared(), k.purchaseRequired, func(code string) bool {
				for _, d := range k.store(b).docs {
					if d.record().ID != self && strings.EqualFold(d.catalog().ItemCode, code) {
						return true
					}
				}
				return false
			})
			if errs = append(errs, k.check(in)...); len(errs) > 0 {
				return prev, errs
			}
			if update {
				item.Record, item.Deletable = *prev.record(), prev.catalog().Deletable
			} else {
				item.Record = s.newRecord(k.resource, now)
			}
			item.DisplayedAs, item.UpdatedAt = item.ItemCode+" - "+item.Description, now
			if item.ItemCode == "" {
				item.DisplayedAs = item.Description
			}
			return k.build(s, item, in), nil
		},
	}
	k.kind.routes(s, mux, w.handler(s, false), w.handler(s, true), nil)
}

// resolveCatalogLocked checks the shared fields (Sage's schema limits: item_code
// and description 255, notes 500, source_guid 255, purchase_description 250);
// taken reports an item code used by another item of the kind.
func resolveCatalogLocked(b *business, in *catalogInput, purchaseRequired bool, taken func(string) bool) (CatalogItem, problems) {
	var errs problems
	item := CatalogItem{Deletable: true, Active: valueOr(in.Active, true), CostPrice: valueOr(in.CostPrice, money.Zero),
		ItemCode: strings.TrimSpace(str(in.ItemCode)), Description: strings.TrimSpace(str(in.Description)),
		Notes: str(in.Notes), SourceGUID: str(in.SourceGUID), PurchaseDescription: str(in.PurchaseDescription)}
	errs.when(item.Description == "", required("description"))
	errs = append(errs, maxLength(item.Description, 255, "description")...)
	errs = append(errs, maxLength(item.ItemCode, 255, "item_code")...)
	errs.when(item.ItemCode != "" && !tooLong(item.ItemCode, 255) && taken(item.ItemCode),
		apiErr(CodeRecordInvalid, "Item code has already been taken", "item_code"))
	errs = append(errs, maxLength(item.Notes, 500, "notes")...)
	errs = append(errs, maxLength(item.SourceGUID, 255, "source_guid")...)
	errs = append(errs, maxLength(item.PurchaseDescription, 250, "purchase_description")...)
	item.SalesLedgerAccount = refOf(ledgerAccountLocked(&errs, b, in.SalesLedgerAccountID, "sales_ledger_account_id", true, true))
	item.PurchaseLedgerAccount = refOf(ledgerAccountLocked(&errs, b, in.PurchaseLedgerAccountID, "purchase_ledger_account_id", purchaseRequired, false))
	item.SalesTaxRate = refOf(taxRateOf(&errs, in.SalesTaxRateID, "sales_tax_rate_id"))
	item.PurchaseTaxRate = refOf(taxRateOf(&errs, in.PurchaseTaxRateID, "purchase_tax_rate_id"))
	return item, errs
}
