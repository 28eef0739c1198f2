package sagesim

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// Product is a stock or non-stock product (reference data for invoice lines).
type Product struct {
	ID                    string              `json:"id"`
	DisplayedAs           string              `json:"displayed_as"`
	Path                  string              `json:"$path"`
	CreatedAt             time.Time           `json:"created_at"`
	UpdatedAt             time.Time           `json:"updated_at"`
	DeletedAt             *time.Time          `json:"deleted_at"`
	Deletable             bool                `json:"deletable"`
	ItemCode              string              `json:"item_code"`
	Description           string              `json:"description"`
	Notes                 string              `json:"notes"`
	SalesLedgerAccount    *Base               `json:"sales_ledger_account"`
	SalesTaxRate          *Base               `json:"sales_tax_rate"`
	PurchaseLedgerAccount *Base               `json:"purchase_ledger_account"`
	PurchaseTaxRate       *Base               `json:"purchase_tax_rate"`
	CostPrice             money.Amount        `json:"cost_price"`
	SalesPrices           []ProductSalesPrice `json:"sales_prices"`
	SourceGUID            string              `json:"source_guid"`
	PurchaseDescription   string              `json:"purchase_description"`
	Active                bool                `json:"active"`
	CatalogItemType       Base                `json:"catalog_item_type"`
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
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.businesses[businessID]
	if !ok {
		return nil
	}
	out := make([]Product, 0, len(b.productOrder))
	for _, id := range b.productOrder {
		out = append(out, *b.products[id])
	}
	return out
}

func (s *Server) validateProductLocked(b *business, in *productInput, self string) ([]APIError, catalogRefs) {
	errs, refs := validateCatalogLocked(b, &in.catalogInput, true, func(code string) bool {
		for _, p := range b.products {
			if p.ID != self && strings.EqualFold(p.ItemCode, code) {
				return true
			}
		}
		return false
	})
	if t := str(in.CatalogItemTypeID); t != "" {
		if _, ok := catalogItemTypes[t]; !ok {
			errs = append(errs, apiErr(CodeRecordInvalid, "is not included in the list", "catalog_item_type_id"))
		}
	}
	if in.SalesPrices != nil {
		for _, p := range *in.SalesPrices {
			if p.Price == nil {
				errs = append(errs, required("sales_prices.price"))
			}
		}
	}
	return errs, refs
}

func (s *Server) buildProductLocked(in *productInput, refs catalogRefs, prev *Product, now time.Time) *Product {
	p := &Product{CreatedAt: now, Deletable: true, Active: true}
	if prev != nil {
		p.ID, p.CreatedAt, p.Deletable = prev.ID, prev.CreatedAt, prev.Deletable
	} else {
		p.ID = s.newID()
	}
	p.Path, p.UpdatedAt = "/products/"+p.ID, now
	p.ItemCode, p.Description = strings.TrimSpace(str(in.ItemCode)), strings.TrimSpace(str(in.Description))
	p.DisplayedAs = catalogDisplay(p.ItemCode, p.Description)
	p.Notes, p.SourceGUID, p.PurchaseDescription = str(in.Notes), str(in.SourceGUID), str(in.PurchaseDescription)
	p.SalesLedgerAccount, p.PurchaseLedgerAccount = refs.salesLedger, refs.purchaseLedger
	p.SalesTaxRate, p.PurchaseTaxRate = refs.salesTax, refs.purchaseTax
	if in.CostPrice != nil {
		p.CostPrice = *in.CostPrice
	}
	if in.Active != nil {
		p.Active = *in.Active
	}
	typ := "STOCK_ITEM"
	if t := str(in.CatalogItemTypeID); t != "" {
		typ = t
	}
	p.CatalogItemType = Base{ID: typ, DisplayedAs: catalogItemTypes[typ], Path: "/catalog_item_types/" + typ}
	if in.SalesPrices != nil {
		for _, sp := range *in.SalesPrices {
			name := str(sp.PriceName)
			if name == "" {
				name = "Selling Price"
			}
			pt := str(sp.ProductSalesPriceTypeID)
			if pt == "" {
				pt = "SELLING_PRICE" // [I]
			}
			p.SalesPrices = append(p.SalesPrices, ProductSalesPrice{
				ID: s.newID(), DisplayedAs: name, PriceName: name, Price: *sp.Price, PriceIncludesTax: sp.PriceIncludesTax,
				ProductSalesPriceType: Base{ID: pt, DisplayedAs: name, Path: "/product_sales_price_types/" + pt},
			})
		}
	}
	return p
}

func (s *Server) createProduct(r *http.Request, call *apiCall) response {
	return s.writeProduct(r, call, false)
}

func (s *Server) updateProduct(r *http.Request, call *apiCall) response {
	return s.writeProduct(r, call, true)
}

// writeProduct is POST /products and PUT /products/{id} (a PUT changes only the
// fields it sends; sales_prices as a whole).
func (s *Server) writeProduct(r *http.Request, call *apiCall, update bool) response {
	fields, idem, bad := decodeObject(r, "product")
	if bad != nil {
		return *bad
	}
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	if resp, ok := s.replayLocked(b, "product", idem); ok {
		return resp
	}
	var prev *Product
	if update {
		p, ok := b.products[r.PathValue("id")]
		if !ok || p.DeletedAt != nil {
			return notFound()
		}
		prev = p
	}
	var in productInput
	var base map[string]json.RawMessage
	self := ""
	if prev != nil {
		base, self = b.inputs[prev.ID], prev.ID
	}
	merged, bad := mergeFields("product", base, fields, &in)
	if bad != nil {
		return *bad
	}
	errs, refs := s.validateProductLocked(b, &in, self)
	if len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	p := s.buildProductLocked(&in, refs, prev, now)
	status := http.StatusOK
	if prev == nil {
		status = http.StatusCreated
		b.productOrder = append(b.productOrder, p.ID)
	}
	b.products[p.ID] = p
	b.inputs[p.ID] = merged
	resp := jsonResponse(status, p)
	s.rememberLocked(b, "product", idem, resp)
	return resp
}

func (s *Server) getProduct(r *http.Request, call *apiCall) response {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := call.business.products[r.PathValue("id")]
	if !ok || p.DeletedAt != nil {
		return notFound()
	}
	return jsonResponse(http.StatusOK, p)
}

// listProducts supports search (item code or description), active and
// updated_or_created_since.
func (s *Server) listProducts(r *http.Request, call *apiCall) response {
	lp, bad := parseListParams(r)
	if bad != nil {
		return *bad
	}
	active := r.URL.Query().Get("active")
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := call.business
	var items []*Product
	for _, id := range b.productOrder {
		p := b.products[id]
		switch {
		case p.DeletedAt != nil, !lp.changedSince(p.CreatedAt, p.UpdatedAt),
			active != "" && (active == "true") != p.Active,
			lp.search != "" && !containsFold(p.ItemCode, lp.search) && !containsFold(p.Description, lp.search):
			continue
		}
		items = append(items, p)
	}
	return listOf(r, "products", items, lp, func(p *Product) any {
		return baseItem{ID: p.ID, DisplayedAs: p.DisplayedAs, Path: p.Path}
	})
}
