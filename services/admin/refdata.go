package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/policy"
	"github.com/ledgersync/ledger/libs/sage"
)

// Reference-cache kinds written at connect. Each doc is the JSON array of the
// list's $items, fetched with attributes=all.
const (
	RefLedgerAccounts = "ledger_accounts" // sales-visible accounts only
	RefTaxRates       = "tax_rates"
	RefBankAccounts   = "bank_accounts"
	RefPaymentMethods = "payment_methods" // Sage's payment methods (policy sage_payment_method_map)
)

// refQueries are the lists fetched at connect, in order.
var refQueries = []struct{ kind, path string }{
	{RefLedgerAccounts, "/ledger_accounts?visible_in=sales&items_per_page=200&attributes=all"},
	{RefTaxRates, "/tax_rates?items_per_page=200&attributes=all"},
	{RefBankAccounts, "/bank_accounts?attributes=all"},
	{RefPaymentMethods, "/payment_methods"},
}

// maxRefPages bounds $next-following (200 items a page).
const maxRefPages = 25

// fetchList GETs path and follows $next, returning every item.
func fetchList(ctx context.Context, c *sage.Client, path string) ([]json.RawMessage, error) {
	var all []json.RawMessage
	for page := 0; path != "" && page < maxRefPages; page++ {
		var l sage.List[json.RawMessage]
		if err := sageGet(ctx, c, path, &l); err != nil {
			return nil, err
		}
		all = append(all, l.Items...)
		path = nextPath(l.Next)
	}
	if all == nil {
		all = []json.RawMessage{}
	}
	return all, nil
}

// nextPath turns Sage's $next (absolute, or a path with or without /v3.1) into a
// path relative to the API base.
func nextPath(next string) string {
	if next == "" {
		return ""
	}
	if u, err := url.Parse(next); err == nil && u.IsAbs() {
		next = u.RequestURI()
	}
	return strings.TrimPrefix(next, "/v3.1")
}

// refData is the part of the reference lists the policy defaults need.
type refData struct {
	ledgerAccounts []ledgerAccount
	taxRates       []taxRate
}

type ledgerAccount struct {
	ID          string `json:"id"`
	NominalCode int    `json:"nominal_code"`
}

type taxRate struct {
	ID             string       `json:"id"`
	Name           string       `json:"name"`
	Percentage     money.Amount `json:"percentage"`
	IsVisible      *bool        `json:"is_visible"`
	IsCombinedRate bool         `json:"is_combined_rate"`
}

func decodeRefData(lists map[string][]json.RawMessage) (refData, error) {
	var rd refData
	for _, raw := range lists[RefLedgerAccounts] {
		var la ledgerAccount
		if err := json.Unmarshal(raw, &la); err != nil {
			return refData{}, fmt.Errorf("ledger account %s: %w", raw, err)
		}
		rd.ledgerAccounts = append(rd.ledgerAccounts, la)
	}
	for _, raw := range lists[RefTaxRates] {
		var tr taxRate
		if err := json.Unmarshal(raw, &tr); err != nil {
			return refData{}, fmt.Errorf("tax rate %s: %w", raw, err)
		}
		if tr.IsCombinedRate || (tr.IsVisible != nil && !*tr.IsVisible) {
			continue
		}
		rd.taxRates = append(rd.taxRates, tr)
	}
	return rd, nil
}

// policyDefaults are the values derived from a business's reference data.
type policyDefaults struct {
	DefaultLedgerAccountID string
	ZeroTaxRateID          string
	DefaultTaxRateID       string
	TaxRateMap             map[string]string
}

// derivePolicyDefaults picks: the sales account with nominal code 4000, else the
// first; the GB_ZERO rate, else the first 0 % rate; the standard rate (an id
// ending _STANDARD or named Standard), else the highest rate; and a map from
// each percentage ("20.00") to its first rate, 0.00 mapped to the zero rate.
func derivePolicyDefaults(rd refData) policyDefaults {
	var d policyDefaults
	for _, la := range rd.ledgerAccounts {
		if la.NominalCode == 4000 {
			d.DefaultLedgerAccountID = la.ID
			break
		}
	}
	if d.DefaultLedgerAccountID == "" && len(rd.ledgerAccounts) > 0 {
		d.DefaultLedgerAccountID = rd.ledgerAccounts[0].ID
	}
	for _, tr := range rd.taxRates {
		if tr.ID == "GB_ZERO" {
			d.ZeroTaxRateID = tr.ID
		}
	}
	if d.ZeroTaxRateID == "" {
		for _, tr := range rd.taxRates {
			if tr.Percentage.IsZero() {
				d.ZeroTaxRateID = tr.ID
				break
			}
		}
	}
	var highest *taxRate
	for i, tr := range rd.taxRates {
		if strings.HasSuffix(tr.ID, "_STANDARD") || strings.EqualFold(tr.Name, "Standard") {
			d.DefaultTaxRateID = tr.ID
			break
		}
		if highest == nil || tr.Percentage.Cmp(highest.Percentage) > 0 {
			highest = &rd.taxRates[i]
		}
	}
	if d.DefaultTaxRateID == "" && highest != nil {
		d.DefaultTaxRateID = highest.ID
	}
	if len(rd.taxRates) > 0 {
		d.TaxRateMap = map[string]string{}
		for _, tr := range rd.taxRates {
			key := tr.Percentage.String() // two decimals: "20.00"
			if _, ok := d.TaxRateMap[key]; !ok {
				d.TaxRateMap[key] = tr.ID
			}
		}
		if d.ZeroTaxRateID != "" {
			d.TaxRateMap["0.00"] = d.ZeroTaxRateID
		}
	}
	return d
}

// fillPolicy sets each default in the stored policy document that is still
// absent or empty, leaving every other key untouched, and validates the result
// with policy.Parse. It returns the new document and the keys it filled.
func fillPolicy(doc []byte, d policyDefaults) ([]byte, []string, error) {
	fields := map[string]json.RawMessage{}
	if len(strings.TrimSpace(string(doc))) > 0 {
		if err := json.Unmarshal(doc, &fields); err != nil {
			return nil, nil, fmt.Errorf("stored policy is not a JSON object: %w", err)
		}
	}
	var filled []string
	set := func(key string, v any, empty bool) {
		if empty || !isEmptyJSON(fields[key]) {
			return
		}
		b, _ := json.Marshal(v)
		fields[key] = b
		filled = append(filled, key)
	}
	set("default_ledger_account_id", d.DefaultLedgerAccountID, d.DefaultLedgerAccountID == "")
	set("zero_tax_rate_id", d.ZeroTaxRateID, d.ZeroTaxRateID == "")
	set("default_tax_rate_id", d.DefaultTaxRateID, d.DefaultTaxRateID == "")
	set("tax_rate_map", d.TaxRateMap, len(d.TaxRateMap) == 0)
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, nil, err
	}
	if _, err := policy.Parse(out); err != nil {
		return nil, nil, err
	}
	sort.Strings(filled)
	return out, filled, nil
}

func isEmptyJSON(raw json.RawMessage) bool {
	switch strings.TrimSpace(string(raw)) {
	case "", "null", `""`, "{}", "[]":
		return true
	}
	return false
}
