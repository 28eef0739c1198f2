package sagesim

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// CatalogItem is what products and services share: reference data for the
// lines of sales documents.
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

// catalogKind is what sets products and services apart.
type catalogKind[D interface {
	document
	catalog() *CatalogItem
}, In interface{ shared() *catalogInput }] struct {
	*kind[D]
	purchaseRequired bool
	newInput         func() In
	// check returns the kind's own 422 entries; build completes a valid item.
	check func(in In) []APIError
	build func(s *Server, item CatalogItem, in In) D
}

// catalogMatch is the list filter of catalog items: search (item code or
// description) and active.
func catalogMatch[D interface{ catalog() *CatalogItem }](q url.Values, lp listParams) func(D) bool {
	active := q.Get("active")
	return func(d D) bool {
		c := d.catalog()
		return (active == "" || (active == "true") == c.Active) &&
			(lp.search == "" || containsFold(c.ItemCode, lp.search) || containsFold(c.Description, lp.search))
	}
}

// writer is POST /resource and PUT /resource/{id}; a PUT changes only the
// fields it sends (prices and rates as a whole).
func (k *catalogKind[D, In]) writer(s *Server) *upsert[D, In] {
	return &upsert[D, In]{kind: k.kind, newInput: k.newInput,
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
}

// routes registers POST, GET and PUT /resource[/{id}].
func (k *catalogKind[D, In]) routes(s *Server, mux *http.ServeMux) {
	w := k.writer(s)
	k.kind.routes(s, mux, w.handler(s, false), w.handler(s, true), nil)
}

// resolveCatalogLocked checks the shared fields (Sage's schema limits:
// item_code and description 255, notes 500, source_guid 255,
// purchase_description 250) and resolves them into an item. taken reports
// whether an item code is used by another item of the same kind. s.mu must be
// held.
func resolveCatalogLocked(b *business, in *catalogInput, purchaseRequired bool, taken func(string) bool) (CatalogItem, problems) {
	var errs problems
	item := CatalogItem{Deletable: true, Active: valueOr(in.Active, true), CostPrice: valueOr(in.CostPrice, money.Zero),
		ItemCode: strings.TrimSpace(str(in.ItemCode)), Description: strings.TrimSpace(str(in.Description)),
		Notes: str(in.Notes), SourceGUID: str(in.SourceGUID), PurchaseDescription: str(in.PurchaseDescription)}
	if item.Description == "" {
		errs = append(errs, required("description"))
	} else {
		errs = append(errs, maxLength(item.Description, 255, "description")...)
	}
	if tooLong(item.ItemCode, 255) {
		errs = append(errs, maxLength(item.ItemCode, 255, "item_code")...)
	} else if item.ItemCode != "" && taken(item.ItemCode) {
		errs = append(errs, apiErr(CodeRecordInvalid, "Item code has already been taken", "item_code"))
	}
	errs = append(errs, maxLength(item.Notes, 500, "notes")...)
	errs = append(errs, maxLength(item.SourceGUID, 255, "source_guid")...)
	errs = append(errs, maxLength(item.PurchaseDescription, 250, "purchase_description")...)
	ledger := func(p *string, source string, req, sales bool) *Base {
		la, ok := byID(b.ledgerAccounts, str(p))
		switch {
		case str(p) == "" && req:
			errs = append(errs, required(source))
		case str(p) == "":
		case !ok:
			errs = append(errs, apiErr(CodeRecordNotFound, "Couldn't find record.", source))
		case sales && !la.VisibleInSales:
			errs = append(errs, apiErr(CodeRecordInvalid, "The ledger account is not valid for sales.", source))
		default:
			return new(la.ref())
		}
		return nil
	}
	item.SalesLedgerAccount = ledger(in.SalesLedgerAccountID, "sales_ledger_account_id", true, true)
	item.PurchaseLedgerAccount = ledger(in.PurchaseLedgerAccountID, "purchase_ledger_account_id", purchaseRequired, false)
	rate := func(p *string, source string) *Base {
		t, ok := byID(taxRates, str(p))
		if ok {
			return new(t.ref())
		}
		errs.when(str(p) != "", apiErr(CodeRecordInvalid, "Couldn't find tax rate.", source))
		return nil
	}
	item.SalesTaxRate = rate(in.SalesTaxRateID, "sales_tax_rate_id")
	item.PurchaseTaxRate = rate(in.PurchaseTaxRateID, "purchase_tax_rate_id")
	return item, errs
}
