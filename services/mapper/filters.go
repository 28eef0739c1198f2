package mapper

import (
	"fmt"

	"github.com/ledgersync/ledger/libs/policy"
)

// The policy's sync-behaviour filters. Each returns a *Skip with
// the stable reason when the document is not to be synced, nil otherwise.
// They run on the canonical document, after the fetch, so they judge what
// Magento says now.

// scope checks website_filter, store_filter and sync_since.
func scope(p policy.Policy, what string, websiteID, storeID int64, checkStore bool, createdAt string) *Skip {
	if !p.WebsiteAllowed(websiteID) {
		return skipf(SkipWebsiteFiltered, "%s belongs to website %d, which website_filter %v leaves out", what, websiteID, p.WebsiteFilter)
	}
	if checkStore && !p.StoreAllowed(storeID) {
		return skipf(SkipStoreFiltered, "%s belongs to store %d, which store_filter %v leaves out", what, storeID, p.StoreFilter)
	}
	if p.SyncSince != nil && createdAt != "" {
		if t, err := parseTime(createdAt); err == nil && t.Before(*p.SyncSince) {
			return skipf(SkipOutsideSyncSince, "%s was created %s, before sync_since %s", what,
				t.Format("2006-01-02 15:04:05Z"), p.SyncSince.UTC().Format("2006-01-02 15:04:05Z"))
		}
	}
	return nil
}

// FilterInvoice applies the policy to invoice.created.
func FilterInvoice(p policy.Policy, inv Invoice) *Skip {
	what := fmt.Sprintf("invoice %s", inv.IncrementID)
	if s := scope(p, what, inv.WebsiteID, inv.StoreID, true, inv.CreatedAt); s != nil {
		return s
	}
	if inv.State != "paid" && !p.SyncUnpaidInvoices {
		return skipf(SkipUnpaidInvoiceFiltered, "%s is %s and sync_unpaid_invoices is off; it is synced when paid", what, inv.State)
	}
	if inv.GrandTotal.IsZero() && !p.SyncZeroValueInvoices {
		return skipf(SkipZeroValueInvoice, "%s has a grand_total of 0 and sync_zero_value_invoices is off", what)
	}
	return nil
}

// FilterPayment applies the policy to invoice.paid (the invoice's scope; a
// payment of nothing is never sent).
func FilterPayment(p policy.Policy, inv Invoice) *Skip {
	what := fmt.Sprintf("the payment of invoice %s", inv.IncrementID)
	if s := scope(p, what, inv.WebsiteID, inv.StoreID, true, inv.CreatedAt); s != nil {
		return s
	}
	if inv.GrandTotal.Sign() <= 0 {
		return skipf(SkipZeroValueInvoice, "invoice %s has a grand_total of 0: there is no payment to record", inv.IncrementID)
	}
	return nil
}

// FilterCreditMemo applies the policy to creditmemo.created; storeID is the
// event's (the credit memo document has none), inv the credited invoice.
func FilterCreditMemo(p policy.Policy, cm CreditMemo, inv *Invoice, storeID int64) *Skip {
	what := fmt.Sprintf("credit memo %s", cm.IncrementID)
	if inv != nil {
		storeID = inv.StoreID
	}
	if s := scope(p, what, cm.WebsiteID, storeID, storeID != 0, cm.CreatedAt); s != nil {
		return s
	}
	if inv != nil {
		if s := scope(p, what+" (its invoice "+inv.IncrementID+")", inv.WebsiteID, inv.StoreID, true, inv.CreatedAt); s != nil {
			return s
		}
	}
	if cm.GrandTotal.IsZero() && !p.SyncZeroValueInvoices {
		return skipf(SkipZeroValueInvoice, "%s has a grand_total of 0 and sync_zero_value_invoices is off", what)
	}
	return nil
}

// FilterCustomer applies website_filter to customer.upserted.
func FilterCustomer(p policy.Policy, websiteID int64, id int64) *Skip {
	if websiteID != 0 && !p.WebsiteAllowed(websiteID) {
		return skipf(SkipWebsiteFiltered, "customer %d belongs to website %d, which website_filter %v leaves out", id, websiteID, p.WebsiteFilter)
	}
	return nil
}

// FilterProduct applies sync_products and website_filter to product.upserted.
func FilterProduct(p policy.Policy, prod Product) *Skip {
	if !p.SyncProducts {
		return skipf(SkipSyncFilterExcluded, "product %s: sync_products is off in the tenant policy", prod.SKU)
	}
	if len(p.WebsiteFilter) > 0 && len(prod.WebsiteIDs) > 0 {
		for _, w := range prod.WebsiteIDs {
			if p.WebsiteAllowed(w) {
				return nil
			}
		}
		return skipf(SkipWebsiteFiltered, "product %s is on websites %v, which website_filter %v leaves out", prod.SKU, prod.WebsiteIDs, p.WebsiteFilter)
	}
	return nil
}
