package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/policy"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// routesPolicy registers the policy page of a tenant: the form, the raw JSON
// fallback and the reference-data refresh.
func (s *Service) routesPolicy(mux *http.ServeMux) {
	mux.Handle("GET /tenants/{tenant}/policy", s.console(http.HandlerFunc(s.handlePolicy)))
	mux.Handle("POST /tenants/{tenant}/policy", s.console(http.HandlerFunc(s.handlePolicyForm)))
	mux.Handle("POST /tenants/{tenant}/policy/json", s.console(http.HandlerFunc(s.handlePolicyJSON)))
	mux.Handle("POST /tenants/{tenant}/policy/refresh", s.console(http.HandlerFunc(s.handlePolicyRefresh)))
}

// policyBlankRows is how many empty rows each mapping table offers for a new
// entry.
const policyBlankRows = 2

// refOption is one choice of a select: a Sage reference item.
type refOption struct {
	ID, Label string
}

// mapRow is one entry of a mapping table (a key → a Sage id).
type mapRow struct {
	Key, Value string
}

// selectField is one policy field chosen from the tenant's Sage reference data.
type selectField struct {
	// Name is the policy's JSON key (the form field's name too).
	Name, Label, Help string
	// Kind is the reference-cache kind its choices come from.
	Kind     string
	Value    string
	Required bool
}

// policyForm is the policy as the form shows it: from the stored document,
// or as submitted.
type policyForm struct {
	Tax     []selectField // default and zero rate
	TaxRows []mapRow
	Ledger  []selectField
	// Bank is the default bank account; PaymentRows map Magento method codes
	// to bank accounts.
	Bank        []selectField
	PaymentRows []mapRow
	// SagePay is the default Sage payment method; SagePayRows map Magento
	// method codes to Sage payment methods.
	SagePay     []selectField
	SagePayRows []mapRow

	SyncUnpaid, SyncZero, SyncProducts bool
	SyncSince, WebsiteFilter           string
	StoreFilter                        string
	B2CEnabled                         bool
	B2CThreshold, B2CContactName       string
	Purchase                           []selectField
}

// policyPage is the policy page's data.
type policyPage struct {
	T    *ledgerv1.Tenant
	Form policyForm
	// Options are the choices per reference kind; a kind that was never
	// fetched is absent (its fields are then free text).
	Options map[string][]refOption
	// RefreshedAt is when the reference data was last read from Sage.
	RefreshedAt *time.Time
	// Errors are the messages by policy field (as SetPolicy names it);
	// General are those of no field on the form.
	Errors  map[string][]string
	General []string
	// RawJSON is the stored document (or the submitted one after an error).
	RawJSON   string
	RawErrors []string
}

// Err is the error text of a field ("" when none).
func (p policyPage) Err(field string) string { return strings.Join(p.Errors[field], " ") }

// RowField is the policy field of a mapping row, as SetPolicy names it:
// tax_rate_map["20.00"].
func (p policyPage) RowField(mapName, key string) string { return fmt.Sprintf("%s[%q]", mapName, key) }

// Choices are the options of a kind, with the current value first when the
// business does not have it (so a stale id is visible, not silently lost).
func (p policyPage) Choices(kind, current string) []refOption {
	opts := p.Options[kind]
	if current != "" && !slices.ContainsFunc(opts, func(o refOption) bool { return o.ID == current }) {
		return append([]refOption{{ID: current, Label: current + " (not in the Sage business)"}}, opts...)
	}
	return opts
}

// HasOptions reports whether the kind's reference data was fetched.
func (p policyPage) HasOptions(kind string) bool { _, ok := p.Options[kind]; return ok }

// selectView is what the template needs to render one select field.
type selectView struct {
	selectField
	// Free is true when the kind's reference data was never fetched: the
	// field is then a text input.
	Free    bool
	Options []refOption
	Err     string
}

// Select is the view of a select field.
func (p policyPage) Select(sf selectField) selectView {
	return selectView{selectField: sf, Free: !p.HasOptions(sf.Kind), Options: p.Choices(sf.Kind, sf.Value), Err: p.Err(sf.Name)}
}

// rowView is what the template needs to render one mapping row.
type rowView struct {
	mapRow
	// Map is the policy map's key (tax_rate_map, …); Kind the reference
	// kind of its values; Field the row's policy field ("" for a blank row).
	Map, Kind, Field string
	Free             bool
	Options          []refOption
	Err              string
	// Index numbers the row for element ids.
	Index int
}

// Row is the view of row i of the mapping table name.
func (p policyPage) Row(name, kind string, i int, r mapRow) rowView {
	v := rowView{mapRow: r, Map: name, Kind: kind, Index: i, Free: !p.HasOptions(kind), Options: p.Choices(kind, r.Value)}
	if r.Key != "" {
		v.Field = p.RowField(name, r.Key)
		v.Err = p.Err(v.Field)
	}
	return v
}

// formFromPolicy is the form of a parsed policy.
func formFromPolicy(pol policy.Policy) policyForm {
	f := policyForm{
		SyncUnpaid: pol.SyncUnpaidInvoices, SyncZero: pol.SyncZeroValueInvoices, SyncProducts: pol.SyncProducts,
		WebsiteFilter: joinInts(pol.WebsiteFilter), StoreFilter: joinInts(pol.StoreFilter),
		B2CEnabled: pol.B2C.Enabled, B2CContactName: pol.B2C.ContactName,
	}
	if pol.SyncSince != nil {
		f.SyncSince = pol.SyncSince.UTC().Format(time.DateOnly)
	}
	if pol.B2C.Threshold != nil {
		f.B2CThreshold = pol.B2C.Threshold.String()
	}
	f.setSelects(map[string]string{
		"default_tax_rate_id": pol.DefaultTaxRateID, "zero_tax_rate_id": pol.ZeroTaxRateID,
		"default_ledger_account_id": pol.DefaultLedgerAccountID, "carriage_ledger_account_id": pol.CarriageLedgerAccountID,
		"gift_card_ledger_account_id": pol.GiftCardLedgerAccountID, "store_credit_ledger_account_id": pol.StoreCreditLedgerAccountID,
		"adjustments_ledger_account_id": pol.AdjustmentsLedgerAccountID, "rounding_ledger_account_id": pol.RoundingLedgerAccountID,
		"default_bank_account_id": pol.DefaultBankAccountID, "default_sage_payment_method_id": pol.DefaultSagePaymentMethodID,
		"purchase_ledger_account_id": pol.PurchaseLedgerAccountID,
	})
	f.TaxRows = rowsOf(pol.TaxRateMap)
	f.PaymentRows = rowsOf(pol.PaymentMethodMap)
	f.SagePayRows = rowsOf(pol.SagePaymentMethodMap)
	return f
}

// setSelects lays out the select fields with their values.
func (f *policyForm) setSelects(v map[string]string) {
	const led, tax, bank, pm = policy.RefLedgerAccounts, policy.RefTaxRates, policy.RefBankAccounts, policy.RefPaymentMethods
	f.Tax = []selectField{
		{Name: "default_tax_rate_id", Label: "Default tax rate", Help: "for a percentage the table does not list", Kind: tax, Required: true},
		{Name: "zero_tax_rate_id", Label: "Zero tax rate", Help: "untaxed lines, shipping without tax, customers outside the home country", Kind: tax, Required: true},
	}
	f.Ledger = []selectField{
		{Name: "default_ledger_account_id", Label: "Sales (default)", Help: "every line without a more specific account", Kind: led, Required: true},
		{Name: "carriage_ledger_account_id", Label: "Carriage", Help: "shipping refunds on credit notes", Kind: led},
		{Name: "gift_card_ledger_account_id", Label: "Gift cards", Help: "gift-card redemptions", Kind: led},
		{Name: "store_credit_ledger_account_id", Label: "Store credit", Help: "customer balance used", Kind: led},
		{Name: "adjustments_ledger_account_id", Label: "Adjustments", Help: "credit-memo adjustment refunds and fees", Kind: led},
		{Name: "rounding_ledger_account_id", Label: "Rounding", Help: "the rounding residue line", Kind: led},
	}
	f.Bank = []selectField{{Name: "default_bank_account_id", Label: "Default bank account", Help: "payments of a method the table does not list; empty: those stay unpaid (payment_method_not_mapped)", Kind: bank}}
	f.SagePay = []selectField{{Name: "default_sage_payment_method_id", Label: "Default Sage payment method", Help: "optional", Kind: pm}}
	f.Purchase = []selectField{{Name: "purchase_ledger_account_id", Label: "Purchase ledger account", Help: "Sage requires one on products; empty uses the business's default", Kind: led}}
	for _, list := range [][]selectField{f.Tax, f.Ledger, f.Bank, f.SagePay, f.Purchase} {
		for i := range list {
			list[i].Value = v[list[i].Name]
		}
	}
}

func rowsOf(m map[string]string) []mapRow {
	rows := make([]mapRow, 0, len(m)+policyBlankRows)
	for k, v := range m {
		rows = append(rows, mapRow{Key: k, Value: v})
	}
	slices.SortFunc(rows, func(a, b mapRow) int { return strings.Compare(a.Key, b.Key) })
	return rows
}

func joinInts(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ", ")
}

// formFromRequest reads the submitted form.
func formFromRequest(r *http.Request) policyForm {
	v := map[string]string{}
	for _, name := range []string{"default_tax_rate_id", "zero_tax_rate_id", "default_ledger_account_id", "carriage_ledger_account_id",
		"gift_card_ledger_account_id", "store_credit_ledger_account_id", "adjustments_ledger_account_id", "rounding_ledger_account_id",
		"default_bank_account_id", "default_sage_payment_method_id", "purchase_ledger_account_id"} {
		v[name] = strings.TrimSpace(r.PostFormValue(name))
	}
	f := policyForm{
		SyncUnpaid: r.PostFormValue("sync_unpaid_invoices") != "", SyncZero: r.PostFormValue("sync_zero_value_invoices") != "",
		SyncProducts: r.PostFormValue("sync_products") != "", SyncSince: strings.TrimSpace(r.PostFormValue("sync_since")),
		WebsiteFilter: strings.TrimSpace(r.PostFormValue("website_filter")), StoreFilter: strings.TrimSpace(r.PostFormValue("store_filter")),
		B2CEnabled: r.PostFormValue("b2c_enabled") != "", B2CThreshold: strings.TrimSpace(r.PostFormValue("b2c_threshold")),
		B2CContactName: strings.TrimSpace(r.PostFormValue("b2c_contact_name")),
	}
	f.setSelects(v)
	f.TaxRows = rowsFrom(r, "tax_rate_map")
	f.PaymentRows = rowsFrom(r, "payment_method_map")
	f.SagePayRows = rowsFrom(r, "sage_payment_method_map")
	return f
}

// rowsFrom reads a mapping table: parallel fields <name>.key and
// <name>.value; rows without a key are dropped.
func rowsFrom(r *http.Request, name string) []mapRow {
	keys, values := r.PostForm[name+".key"], r.PostForm[name+".value"]
	var rows []mapRow
	for i, k := range keys {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		row := mapRow{Key: k}
		if i < len(values) {
			row.Value = strings.TrimSpace(values[i])
		}
		rows = append(rows, row)
	}
	return rows
}

// document applies the form to the stored policy document obj (keys the form
// does not manage are kept as they are) and answers the errors of fields the
// form itself could not read, by field.
func (f policyForm) document(obj map[string]json.RawMessage) map[string][]string {
	errs := map[string][]string{}
	set := func(key string, v any) {
		b, _ := json.Marshal(v)
		obj[key] = b
	}
	setOrDrop := func(key, v string) {
		if v == "" {
			delete(obj, key)
			return
		}
		set(key, v)
	}
	for _, list := range [][]selectField{f.Tax, f.Ledger, f.Bank, f.SagePay, f.Purchase} {
		for _, sf := range list {
			if sf.Required {
				set(sf.Name, sf.Value)
			} else {
				setOrDrop(sf.Name, sf.Value)
			}
		}
	}
	rowsMap := func(rows []mapRow) map[string]string {
		m := make(map[string]string, len(rows))
		for _, r := range rows {
			m[r.Key] = r.Value
		}
		return m
	}
	set("tax_rate_map", rowsMap(f.TaxRows))
	for name, rows := range map[string][]mapRow{"payment_method_map": f.PaymentRows, "sage_payment_method_map": f.SagePayRows} {
		if len(rows) == 0 {
			delete(obj, name)
		} else {
			set(name, rowsMap(rows))
		}
	}
	set("sync_unpaid_invoices", f.SyncUnpaid)
	set("sync_zero_value_invoices", f.SyncZero)
	set("sync_products", f.SyncProducts)
	if f.SyncSince == "" {
		delete(obj, "sync_since")
	} else if d, err := time.Parse(time.DateOnly, f.SyncSince); err != nil {
		errs["sync_since"] = append(errs["sync_since"], fmt.Sprintf("sync_since %q: use a date such as 2026-01-31, or leave it empty to sync everything", f.SyncSince))
	} else {
		set("sync_since", d.UTC())
	}
	for name, text := range map[string]string{"website_filter": f.WebsiteFilter, "store_filter": f.StoreFilter} {
		ids, err := parseIDList(text)
		switch {
		case err != nil:
			errs[name] = append(errs[name], fmt.Sprintf("%s: %v", name, err))
		case len(ids) == 0:
			delete(obj, name)
		default:
			set(name, ids)
		}
	}
	b2c := map[string]any{"enabled": f.B2CEnabled}
	if f.B2CThreshold != "" {
		if a, err := money.Parse(f.B2CThreshold); err != nil {
			errs["b2c_consolidation.threshold"] = append(errs["b2c_consolidation.threshold"],
				fmt.Sprintf("b2c_consolidation.threshold %q: use an amount such as 50.00, or leave it empty to consolidate every guest order", f.B2CThreshold))
		} else {
			b2c["threshold"] = a
		}
	}
	if f.B2CContactName != "" {
		b2c["contact_name"] = f.B2CContactName
	}
	set("b2c_consolidation", b2c)
	return errs
}

// parseIDList reads "1, 2 3" as Magento ids.
func parseIDList(text string) ([]int64, error) {
	var ids []int64
	for _, part := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
		id, err := strconv.ParseInt(part, 10, 64)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("%q is not a Magento id: list ids such as 1, 2 (empty: all)", part)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// policyKeys are the JSON keys of policy.Policy: a field path SetPolicy
// names starts with one of them.
var policyKeys = func() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeFor[policy.Policy]()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
}()

// fieldPath matches the field a policy error line starts with: a key, dotted
// sub-keys, and an optional ["map key"], or the `tax_rate_map key "x"` form
// of a malformed map key.
var fieldPath = regexp.MustCompile(`^([a-z][a-z0-9_]*)((?:\.[a-z][a-z0-9_]*)*)(\["(?:[^"\\]|\\.)*"\]| key ("(?:[^"\\]|\\.)*"))?(?:[: ]|$)`)

// policyErrorFields splits SetPolicy's InvalidArgument message (one problem
// per line, each starting with the policy field it is about) into messages
// by field; lines that name no policy field are returned as general.
// A malformed map key (`tax_rate_map key "20"`) is filed under the row's
// field (`tax_rate_map["20"]`).
func policyErrorFields(msg string) (byField map[string][]string, general []string) {
	byField = map[string][]string{}
	for line := range strings.SplitSeq(msg, "\n") {
		line = strings.TrimSpace(line)
		line = strings.TrimPrefix(line, "invalid policy: ")
		if line == "" {
			continue
		}
		m := fieldPath.FindStringSubmatch(line)
		if m == nil || !policyKeys[m[1]] {
			general = append(general, line)
			continue
		}
		field := m[1] + m[2]
		switch {
		case strings.HasPrefix(m[3], "["):
			field += m[3]
		case m[4] != "":
			field += "[" + m[4] + "]"
		}
		byField[field] = append(byField[field], line)
	}
	return byField, general
}

// policyData loads what the policy page shows besides the form: the tenant,
// the stored document and the reference data.
func (s *Service) policyData(w http.ResponseWriter, r *http.Request) (*policyPage, map[string]json.RawMessage, bool) {
	t := s.consoleTenant(w, r)
	if t == nil {
		return nil, nil, false
	}
	got, err := s.GetPolicy(r.Context(), &ledgerv1.GetPolicyRequest{TenantId: t.GetTenantId()})
	if err != nil {
		s.renderConsoleMessage(w, r, httpStatus(err), page{Title: "The policy cannot be read", Problem: rpcMessage(err),
			Back: "/tenants/" + t.GetTenantId()})
		return nil, nil, false
	}
	obj := map[string]json.RawMessage{}
	if err := json.Unmarshal([]byte(got.GetPolicyJson()), &obj); err != nil {
		obj = map[string]json.RawMessage{}
	}
	p := &policyPage{T: t, RawJSON: got.GetPolicyJson(), Options: map[string][]refOption{}, Errors: map[string][]string{}}
	for _, kind := range policy.RefKinds {
		doc, at, err := s.st.RefCache(r.Context(), t.GetTenantId(), kind)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			s.log.ErrorContext(r.Context(), "console: reference data", "tenant_id", t.GetTenantId(), "kind", kind, "err", err)
			p.General = append(p.General, "The "+kind+" reference data cannot be read (details in the admin service log); its fields are free text.")
			continue
		}
		p.Options[kind] = refOptions(doc)
		if p.RefreshedAt == nil || at.Before(*p.RefreshedAt) {
			p.RefreshedAt = &at
		}
	}
	pol, err := policy.Parse([]byte(got.GetPolicyJson()))
	if err != nil {
		// A stored policy that no longer parses: show the defaults and say why.
		p.General = append(p.General, "The stored policy does not parse ("+err.Error()+"); the form shows the defaults. Fix it in the raw JSON below.")
		pol = policy.Default()
	}
	p.Form = formFromPolicy(pol)
	return p, obj, true
}

// refOptions are a reference list's choices: id and Sage's own label.
func refOptions(doc []byte) []refOption {
	var items []struct {
		ID          string          `json:"id"`
		DisplayedAs string          `json:"displayed_as"`
		Name        string          `json:"name"`
		NominalCode json.RawMessage `json:"nominal_code"`
		Percentage  json.RawMessage `json:"percentage"`
	}
	_ = json.Unmarshal(doc, &items)
	opts := make([]refOption, 0, len(items))
	for _, it := range items {
		if it.ID == "" {
			continue
		}
		label := it.DisplayedAs
		if label == "" {
			label = it.Name
		}
		if label == "" || label == it.ID {
			label = it.ID
		} else {
			label += " — " + it.ID
		}
		opts = append(opts, refOption{ID: it.ID, Label: label})
	}
	return opts
}

// addBlankRows gives each mapping table its empty rows for new entries.
func (p *policyPage) addBlankRows() {
	for _, rows := range []*[]mapRow{&p.Form.TaxRows, &p.Form.PaymentRows, &p.Form.SagePayRows} {
		for range policyBlankRows {
			*rows = append(*rows, mapRow{})
		}
	}
}

func (s *Service) renderPolicy(w http.ResponseWriter, r *http.Request, code int, p *policyPage) {
	p.addBlankRows()
	s.renderConsole(w, r, code, "policy.html", "Policy of "+p.T.GetTenantId(), p)
}

// handlePolicy is GET /tenants/{tenant}/policy.
func (s *Service) handlePolicy(w http.ResponseWriter, r *http.Request) {
	p, _, ok := s.policyData(w, r)
	if !ok {
		return
	}
	s.renderPolicy(w, r, http.StatusOK, p)
}

// handlePolicyForm builds the policy document from the form over the stored
// one and calls SetPolicy; every error is shown next to the field it names.
func (s *Service) handlePolicyForm(w http.ResponseWriter, r *http.Request) {
	p, obj, ok := s.policyData(w, r)
	if !ok {
		return
	}
	p.Form = formFromRequest(r)
	if errs := p.Form.document(obj); len(errs) > 0 {
		p.Errors = errs
		s.renderPolicy(w, r, http.StatusBadRequest, p)
		return
	}
	doc, _ := json.Marshal(obj)
	if _, err := s.SetPolicy(r.Context(), &ledgerv1.SetPolicyRequest{TenantId: p.T.GetTenantId(), PolicyJson: string(doc)}); err != nil {
		p.Errors, p.General = policyErrorFields(rpcMessage(err))
		s.renderPolicy(w, r, httpStatus(err), p)
		return
	}
	s.setFlash(w, flashOK, "Policy saved. New runs use it; retry failed runs to apply it to them.")
	http.Redirect(w, r, "/tenants/"+p.T.GetTenantId()+"/policy", http.StatusSeeOther)
}

// handlePolicyJSON stores the raw JSON document (the advanced fallback).
func (s *Service) handlePolicyJSON(w http.ResponseWriter, r *http.Request) {
	p, _, ok := s.policyData(w, r)
	if !ok {
		return
	}
	raw := r.PostFormValue("policy_json")
	if _, err := s.SetPolicy(r.Context(), &ledgerv1.SetPolicyRequest{TenantId: p.T.GetTenantId(), PolicyJson: raw}); err != nil {
		byField, general := policyErrorFields(rpcMessage(err))
		for _, msgs := range byField {
			p.RawErrors = append(p.RawErrors, msgs...)
		}
		slices.Sort(p.RawErrors)
		p.RawErrors = append(p.RawErrors, general...)
		p.RawJSON = raw
		s.renderPolicy(w, r, httpStatus(err), p)
		return
	}
	s.setFlash(w, flashOK, "Policy saved from the raw JSON.")
	http.Redirect(w, r, "/tenants/"+p.T.GetTenantId()+"/policy", http.StatusSeeOther)
}

// handlePolicyRefresh re-reads the tenant's Sage reference data.
func (s *Service) handlePolicyRefresh(w http.ResponseWriter, r *http.Request) {
	t := s.consoleTenant(w, r)
	if t == nil {
		return
	}
	back := "/tenants/" + t.GetTenantId() + "/policy"
	resp, err := s.RefreshReferenceData(r.Context(), &ledgerv1.RefreshReferenceDataRequest{TenantId: t.GetTenantId()})
	if err != nil {
		s.setFlash(w, flashError, "Refreshing the reference data failed: "+rpcMessage(err))
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	kinds := make([]string, 0, len(resp.GetCounts()))
	for k := range resp.GetCounts() {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%d %s", resp.GetCounts()[k], strings.ReplaceAll(k, "_", " "))
	}
	s.setFlash(w, flashOK, "Reference data refreshed from Sage: "+strings.Join(parts, ", ")+".")
	http.Redirect(w, r, back, http.StatusSeeOther)
}
