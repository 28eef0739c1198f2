package sagesim

import (
	"strconv"
	"strings"

	"github.com/ledgersync/ledger/libs/money"
)

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

// catalogRefs are the resolved references of a valid catalog item.
type catalogRefs struct {
	salesLedger, purchaseLedger *Base
	salesTax, purchaseTax       *Base
}

// validateCatalogLocked checks the shared fields (swagger maxLengths:
// item_code and description 255, notes 500, source_guid 255,
// purchase_description 250). taken reports whether an item code is used by
// another item of the same kind (unique per kind, case-insensitive [I]).
// s.mu must be held.
func validateCatalogLocked(b *business, in *catalogInput, purchaseRequired bool, taken func(string) bool) ([]APIError, catalogRefs) {
	var errs []APIError
	var refs catalogRefs
	switch d := strings.TrimSpace(str(in.Description)); {
	case d == "":
		errs = append(errs, required("description"))
	case tooLong(d, 255):
		errs = append(errs, apiErr(CodeRecordInvalid, "Description is too long (maximum is 255 characters)", "description"))
	}
	switch code := strings.TrimSpace(str(in.ItemCode)); {
	case tooLong(code, 255):
		errs = append(errs, apiErr(CodeRecordInvalid, "Item code is too long (maximum is 255 characters)", "item_code"))
	case code != "" && taken(code):
		errs = append(errs, apiErr(CodeRecordInvalid, "Item code has already been taken", "item_code"))
	}
	for _, f := range []struct {
		v      *string
		n      int
		source string
		name   string
	}{
		{in.Notes, 500, "notes", "Notes"}, {in.SourceGUID, 255, "source_guid", "Source guid"},
		{in.PurchaseDescription, 250, "purchase_description", "Purchase description"},
	} {
		if tooLong(str(f.v), f.n) {
			errs = append(errs, apiErr(CodeRecordInvalid, f.name+" is too long (maximum is "+strconv.Itoa(f.n)+" characters)", f.source))
		}
	}
	ledger := func(p *string, source string, req, sales bool) *Base {
		id := str(p)
		if id == "" {
			if req {
				errs = append(errs, required(source))
			}
			return nil
		}
		la, ok := b.ledgerAccount(id)
		switch {
		case !ok:
			errs = append(errs, apiErr(CodeRecordNotFound, "Couldn't find record.", source))
			return nil
		case sales && !la.VisibleInSales:
			errs = append(errs, apiErr(CodeRecordInvalid, "The ledger account is not valid for sales.", source))
			return nil
		}
		base := la.base()
		return &base
	}
	refs.salesLedger = ledger(in.SalesLedgerAccountID, "sales_ledger_account_id", true, true)
	refs.purchaseLedger = ledger(in.PurchaseLedgerAccountID, "purchase_ledger_account_id", purchaseRequired, false)
	rate := func(p *string, source string) *Base {
		id := str(p)
		if id == "" {
			return nil
		}
		t, ok := taxRateByID(id)
		if !ok {
			errs = append(errs, apiErr(CodeRecordInvalid, "Couldn't find tax rate.", source))
			return nil
		}
		return t.base()
	}
	refs.salesTax = rate(in.SalesTaxRateID, "sales_tax_rate_id")
	refs.purchaseTax = rate(in.PurchaseTaxRateID, "purchase_tax_rate_id")
	return errs, refs
}

// catalogDisplay is a catalog item's displayed_as: "CODE - description", or the
// description alone.
func catalogDisplay(code, description string) string {
	if code == "" {
		return description
	}
	return code + " - " + description
}
