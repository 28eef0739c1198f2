package admin_test

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/sage"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/admin"
	magentosim "github.com/ledgersync/ledger/sim/magento"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// books is a tenant whose shop (sim/magento) and Sage business (sim/sage)
// hold the same invoices, linked in entity_xref as the writer links them.
type books struct {
	h        *harness
	shop     *magentosim.Shop
	sage     *sage.Client // the tenant's business, as the merchant in Sage's web app
	ledgerID string       // a sales ledger account
	invoices map[int64]sageRef
	payments map[int64]sageRef // by invoice id
	contacts map[int64]string  // Sage contact by invoice id
	bank     string
	// Credit memos (Magento id) of paid invoices, refunded in Sage, and of
	// open invoices, allocated against them in Sage: their credit notes and
	// refunds.
	creditNotes map[int64]sageRef
	refunds     map[int64]sageRef
	credited    map[int64]bool // invoices with a credit memo
	unitemised  int            // unitemised-credit receipts
	examined    int            // documents of the reconciled kinds Ledger created
}

type sageRef struct {
	id    string
	total money.Amount
}

// newBooks pairs a shop and connects Sage for tenant acme, seeds n invoices
// (a third paid) in the shop, and writes each to Sage as the pipeline would
// have: the invoice for Magento's grand total, a receipt for the paid ones,
// a credit note refunded (paid invoices) or allocated to its invoice (open
// ones) for credit memos on 40 + 10 of them, five open ones booked with an
// unitemised credit, and their entity_xref links.
func newBooks(t *testing.T, n int) *books {
	t.Helper()
	h := newHarness(t, func(c *admin.Config) { c.SageRatePerMinute = 600_000 })
	h.createTenant(t, "acme")
	shop, shopURL := newShop(t, magentosim.Config{})
	if _, err := h.client.ConnectMagento(h.ctx(t), &ledgerv1.ConnectMagentoRequest{TenantId: "acme", ShopUrl: shopURL,
		PairingCode: shop.GeneratePairingCode()}); err != nil {
		t.Fatalf("ConnectMagento: %v", err)
	}
	h.connectSage(t, "acme")
	// The documents below are written the simplest valid way (one zero-rated
	// line); the quirks concern the mapper's bodies, not reconciliation.
	h.sage.SetQuirks(sagesim.Quirks{})
	tok, err := h.st.Tokens(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	b := &books{h: h, shop: shop, invoices: map[int64]sageRef{}, payments: map[int64]sageRef{}, contacts: map[int64]string{},
		creditNotes: map[int64]sageRef{}, refunds: map[int64]sageRef{}, credited: map[int64]bool{},
		sage: &sage.Client{BaseURL: h.svc.Config().Sage.APIURL, Tokens: sage.StaticToken(tok.Access), BusinessID: h.sage.LeadBusinessID()}}
	var accounts sage.List[struct {
		ID          string `json:"id"`
		NominalCode int    `json:"nominal_code"`
	}]
	if err := b.sage.Get(t.Context(), "/ledger_accounts?visible_in=sales&items_per_page=200&attributes=nominal_code", &accounts); err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts.Items {
		if a.NominalCode == 4000 {
			b.ledgerID = a.ID
		}
	}
	var banks sage.List[sage.Document]
	if err := b.sage.Get(t.Context(), "/bank_accounts", &banks); err != nil || len(banks.Items) == 0 {
		t.Fatalf("bank accounts: %v %v", banks, err)
	}
	b.bank = banks.Items[0].ID

	seeded := shop.Seed(rand.New(rand.NewPCG(12, 1)), magentosim.Options{Customers: 40, Invoices: n, PaidShare: 0.33})
	if len(seeded.InvoiceIDs) != n {
		t.Fatalf("seeded %d invoices, want %d", len(seeded.InvoiceIDs), n)
	}
	contacts := map[int64]string{}
	var kinds, keys, ids []string
	link := func(kind string, key int64, id string) {
		kinds, keys, ids = append(kinds, kind), append(keys, strconv.FormatInt(key, 10)), append(ids, id)
	}
	unitemised := 0
	for i, id := range seeded.InvoiceIDs {
		if i%100 == 0 {
			h.sage.Advance(time.Second) // written over 20 simulated seconds, as a shop's day is spread out
		}
		inv, _ := shop.Invoice(id)
		contact, ok := contacts[inv.Customer.MagentoID]
		if !ok {
			ref := "M" + strconv.FormatInt(inv.Customer.MagentoID, 10)
			if inv.Customer.IsGuest() {
				ref = "G" + strconv.FormatInt(id, 10)
			}
			doc := b.create(t, "contacts", "contact", map[string]any{"name": "Customer " + ref, "reference": ref,
				"contact_type_ids": []string{"CUSTOMER"}})
			contact = doc.ID
			if !inv.Customer.IsGuest() {
				contacts[inv.Customer.MagentoID] = contact
			}
		}
		total, booked := inv.GrandTotal.Cents(), inv.GrandTotal.Cents()
		// Five open invoices were paid 3.00 by a gift card the feed does not
		// itemise: booked at full value, the 3.00 received from the clearing
		// account (policy unitemised_credit).
		credit := inv.State == magentosim.InvoiceOpen && unitemised < 5
		if credit {
			unitemised++
			booked = total.Add(money.MustParse("3.00"))
			b.credited[id] = true
		}
		doc := b.create(t, "sales_invoices", "sales_invoice", map[string]any{"contact_id": contact, "date": "2026-11-20",
			"reference": inv.IncrementID, "invoice_lines": []map[string]any{{"description": "Order " + inv.IncrementID,
				"ledger_account_id": b.ledgerID, "quantity": "1", "unit_price": booked.String(), "tax_rate_id": "GB_ZERO", "tax_amount": "0.00"}}})
		b.invoices[id] = sageRef{id: doc.ID, total: total}
		b.contacts[id] = contact
		if credit {
			cr := b.create(t, "contact_payments", "contact_payment", map[string]any{"transaction_type_id": "CUSTOMER_RECEIPT",
				"contact_id": contact, "bank_account_id": banks.Items[0].ID, "date": "2026-11-20", "total_amount": "3.00",
				"reference": inv.IncrementID + "-CR", "allocated_artefacts": []map[string]any{{"artefact_id": doc.ID, "amount": "3.00"}}})
			link("unitemised_credit", id, cr.ID)
			b.unitemised++
		}
		link("invoice", id, doc.ID)
		if inv.State == magentosim.InvoicePaid {
			pay := b.create(t, "contact_payments", "contact_payment", map[string]any{"transaction_type_id": "CUSTOMER_RECEIPT",
				"contact_id": contact, "bank_account_id": banks.Items[0].ID, "date": "2026-11-20", "total_amount": total.String(),
				"allocated_artefacts": []map[string]any{{"artefact_id": doc.ID, "amount": total.String()}}})
			b.payments[id] = sageRef{id: pay.ID, total: total}
			link("payment", id, pay.ID)
		}
	}
	refunded, allocated := 0, 0
	for _, id := range seeded.InvoiceIDs {
		inv, _ := shop.Invoice(id)
		paid := inv.State == magentosim.InvoicePaid
		if b.credited[id] || (paid && refunded == 40) || (!paid && allocated == 10) {
			continue
		}
		b.credited[id] = true
		cm, err := shop.CreateCreditMemo(id, "returned")
		if err != nil {
			t.Fatal(err)
		}
		total := cm.GrandTotal.Cents().String()
		cn := b.create(t, "sales_credit_notes", "sales_credit_note", map[string]any{"contact_id": b.contacts[id], "date": "2026-11-20",
			"original_invoice_date": "2026-11-20", "reference": "CM-" + cm.IncrementID, "credit_note_lines": []map[string]any{{
				"description": "Refund " + cm.IncrementID, "ledger_account_id": b.ledgerID, "quantity": "1", "unit_price": total,
				"tax_rate_id": "GB_ZERO", "tax_amount": "0.00"}}})
		b.creditNotes[cm.MagentoID] = sageRef{id: cn.ID, total: cm.GrandTotal.Cents()}
		link("credit_note", cm.MagentoID, cn.ID)
		if paid {
			refunded++
			rf := b.create(t, "contact_payments", "contact_payment", map[string]any{"transaction_type_id": "CUSTOMER_REFUND",
				"contact_id": b.contacts[id], "bank_account_id": b.bank, "date": "2026-11-20", "total_amount": total,
				"allocated_artefacts": []map[string]any{{"artefact_id": cn.ID, "amount": total}}})
			b.refunds[cm.MagentoID] = sageRef{id: rf.ID, total: cm.GrandTotal.Cents()}
			link("refund", cm.MagentoID, rf.ID)
			continue
		}
		allocated++
		al := b.create(t, "contact_allocations", "contact_allocation", map[string]any{"transaction_type_id": "CUSTOMER_ALLOCATION",
			"contact_id": b.contacts[id], "allocated_artefacts": []map[string]any{{"artefact_id": b.invoices[id].id, "amount": total},
				{"artefact_id": cn.ID, "amount": "-" + total}}})
		link("allocation", cm.MagentoID, al.ID)
	}
	b.examined = n + len(b.payments) + len(b.creditNotes) + len(b.refunds) + b.unitemised
	if _, err := h.st.Pool().Exec(t.Context(), `INSERT INTO entity_xref (tenant_id, kind, magento_key, currency, sage_id)
		SELECT 'acme', k, m, 'GBP', s FROM unnest($1::text[], $2::text[], $3::text[]) AS x(k, m, s)`, kinds, keys, ids); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *books) create(t *testing.T, resource, root string, obj map[string]any) sage.Document {
	t.Helper()
	raw, _ := json.Marshal(obj)
	doc, _, err := b.sage.Create(t.Context(), resource, root, raw)
	if err != nil {
		t.Fatalf("POST /%s: %v", resource, err)
	}
	return doc
}

func (b *books) call(t *testing.T, method, path string, body any, want int) {
	t.Helper()
	resp, err := b.sage.Do(t.Context(), method, path, body)
	if err != nil || resp.Status != want {
		t.Fatalf("%s %s: %v %v, want %d", method, path, resp, err, want)
	}
}

// pick returns an invoice id of the given Magento state, without a credit
// memo, not in used.
func (b *books) pick(t *testing.T, state string, used map[int64]bool) int64 {
	t.Helper()
	ids := make([]int64, 0, len(b.invoices))
	for id := range b.invoices {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if inv, _ := b.shop.Invoice(id); inv.State == state && !used[id] && !b.credited[id] {
			used[id] = true
			return id
		}
	}
	t.Fatalf("no %s invoice left", state)
	return 0
}

func findingKeys(fs []*ledgerv1.ReconcileFinding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.GetCode()+" "+f.GetSageId())
	}
	slices.Sort(out)
	return out
}

// The acceptance test of reconciliation: 2,000 invoices (and their
// receipts) agree in Ledger, Sage and Magento, and a pass finds nothing; then
// documents are voided, deleted and edited in Sage, and the next pass lists
// only what changed and finds each with its code, naming the fix.
func TestReconcileFindsVoidsDeletionsAndEdits(t *testing.T) {
	t.Parallel()
	const n = 2000
	b := newBooks(t, n)
	h := b.h
	start := time.Now()

	first, err := h.client.Reconcile(h.ctx(t), &ledgerv1.ReconcileRequest{TenantId: "acme",
		Since: timestamppb.New(time.Now().Add(-time.Hour))})
	if err != nil {
		t.Fatalf("first pass: %v", err)
	}
	t.Logf("first pass: %s, listed %v, examined %d, %d Sage and %d Magento calls", time.Since(start).Round(time.Millisecond),
		first.GetListed(), first.GetExamined(), first.GetSageCalls(), first.GetMagentoCalls())
	if want := int32(b.examined); first.GetExamined() != want {
		t.Fatalf("first pass examined %d documents, want %d (every invoice, receipt, credit note and refund)", first.GetExamined(), want)
	}
	if len(first.GetFindings()) != 0 {
		t.Fatalf("first pass over untouched books found %d: %v", len(first.GetFindings()), first.GetFindings()[0])
	}

	// Changes in Sage, a minute later, as a merchant would make them.
	h.sage.Advance(time.Minute)
	used := map[int64]bool{}
	voided, deleted, edited, paidByHand := b.pick(t, "open", used), b.pick(t, "open", used), b.pick(t, "open", used), b.pick(t, "open", used)
	unpaid := b.pick(t, "paid", used)
	b.call(t, http.MethodDelete, "/sales_invoices/"+b.invoices[voided].id+"?void_reason=Entered+twice", nil, http.StatusOK)
	if err := h.sage.DeleteInWebApp(h.sage.LeadBusinessID(), b.invoices[deleted].id); err != nil {
		t.Fatal(err)
	}
	newPrice := b.invoices[edited].total.Add(money.MustParse("5.00"))
	b.call(t, http.MethodPut, "/sales_invoices/"+b.invoices[edited].id, map[string]any{"sales_invoice": map[string]any{
		"invoice_lines": []map[string]any{{"description": "Edited in Sage", "ledger_account_id": b.ledgerID, "quantity": "1",
			"unit_price": newPrice.String(), "tax_rate_id": "GB_ZERO", "tax_amount": "0.00"}}}}, http.StatusOK)
	b.call(t, http.MethodDelete, "/contact_payments/"+b.payments[unpaid].id, nil, http.StatusNoContent)
	refundedMemo := slices.Sorted(maps.Keys(b.refunds))[0]
	b.call(t, http.MethodDelete, "/contact_payments/"+b.refunds[refundedMemo].id, nil, http.StatusNoContent)
	var inv struct {
		Contact struct{ ID string } `json:"contact"`
	}
	if err := b.sage.Get(t.Context(), "/sales_invoices/"+b.invoices[paidByHand].id, &inv); err != nil {
		t.Fatal(err)
	}
	b.create(t, "contact_payments", "contact_payment", map[string]any{"transaction_type_id": "CUSTOMER_RECEIPT",
		"contact_id": inv.Contact.ID, "bank_account_id": b.bank, "date": "2026-11-21", "total_amount": "1.00",
		"allocated_artefacts": []map[string]any{{"artefact_id": b.invoices[paidByHand].id, "amount": "1.00"}}})

	second, err := h.client.Reconcile(h.ctx(t), &ledgerv1.ReconcileRequest{TenantId: "acme"})
	if err != nil {
		t.Fatalf("second pass: %v", err)
	}
	t.Logf("second pass: listed %v, examined %d, %d Sage and %d Magento calls", second.GetListed(), second.GetExamined(),
		second.GetSageCalls(), second.GetMagentoCalls())
	if !second.GetSince().AsTime().Equal(first.GetHighWater().AsTime()) {
		t.Fatalf("second pass started at %v, want the first's high-water mark %v", second.GetSince().AsTime(), first.GetHighWater().AsTime())
	}
	if got := second.GetListed()["sales_invoices"]; got >= n/2 {
		t.Fatalf("second pass listed %d invoices: it should list what changed since the first", got)
	}
	want := []string{
		admin.CodeSageDocumentVoided + " " + b.invoices[voided].id,
		admin.CodeSageDocumentDeleted + " " + b.invoices[deleted].id,
		admin.CodeSageTotalDiffers + " " + b.invoices[edited].id,
		admin.CodeSageOutstandingDiffers + " " + b.invoices[paidByHand].id,
		admin.CodeSageDocumentDeleted + " " + b.payments[unpaid].id,
		admin.CodePaidInMagentoOutstandingInSage + " " + b.invoices[unpaid].id,
		admin.CodeSageDocumentDeleted + " " + b.refunds[refundedMemo].id,
		admin.CodeSageOutstandingDiffers + " " + b.creditNotes[refundedMemo].id,
	}
	slices.Sort(want)
	if got := findingKeys(second.GetFindings()); !slices.Equal(got, want) {
		t.Fatalf("findings:\n got %v\nwant %v", got, want)
	}
	for _, f := range second.GetFindings() {
		switch f.GetCode() {
		case admin.CodeSageDocumentVoided:
			if !strings.Contains(f.GetMessage(), `"Entered twice"`) || !strings.Contains(f.GetMessage(), "ledgerctl xref set --tenant acme --kind invoice") {
				t.Errorf("voided: %s", f.GetMessage())
			}
		case admin.CodeSageTotalDiffers:
			if f.GetSageAmount() != newPrice.String() || f.GetMagentoAmount() != b.invoices[edited].total.String() {
				t.Errorf("total differs: Sage %s Magento %s, want %s %s", f.GetSageAmount(), f.GetMagentoAmount(), newPrice, b.invoices[edited].total)
			}
		case admin.CodePaidInMagentoOutstandingInSage:
			if f.GetSageAmount() != b.invoices[unpaid].total.String() || !strings.Contains(f.GetMessage(), "--kind payment") {
				t.Errorf("paid in Magento: %s %s", f.GetSageAmount(), f.GetMessage())
			}
		}
	}

	// Stored for the dashboard, counted, and summed per day.
	list, err := h.client.ListReconcileFindings(h.ctx(t), &ledgerv1.ListReconcileFindingsRequest{TenantId: "acme"})
	if err != nil || !slices.Equal(findingKeys(list.GetFindings()), want) {
		t.Fatalf("stored findings: %v %v", findingKeys(list.GetFindings()), err)
	}
	metrics := h.metrics(t)
	for code, count := range map[string]int{admin.CodeSageDocumentVoided: 1, admin.CodeSageDocumentDeleted: 3, admin.CodeSageTotalDiffers: 1,
		admin.CodeSageOutstandingDiffers: 2, admin.CodePaidInMagentoOutstandingInSage: 1} {
		if line := `ledger_admin_reconcile_findings_total{code="` + code + `"} ` + strconv.Itoa(count); !strings.Contains(metrics, line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	totals, err := h.client.GetDailyTotals(h.ctx(t), &ledgerv1.GetDailyTotalsRequest{TenantId: "acme", From: "2026-11-01", To: "2026-11-30"})
	if err != nil || len(totals.GetTotals()) != 1 {
		t.Fatalf("daily totals: %v %v", totals, err)
	}
	day := totals.GetTotals()[0]
	wantDiff := money.MustParse("5.00").Sub(b.invoices[voided].total).Sub(b.invoices[deleted].total)
	if day.GetDay() != "2026-11-20" || day.GetCurrency() != "GBP" || day.GetInvoices() != n || day.GetDifference() != wantDiff.String() {
		t.Fatalf("daily total %v, want 2026-11-20 GBP %d invoices, difference %s", day, n, wantDiff)
	}

	// Undone in Sage (the merchant records the payment again and relinks it),
	// the finding is resolved by the next pass; the others still stand.
	h.sage.Advance(time.Minute)
	var unpaidInv struct {
		Contact struct{ ID string } `json:"contact"`
	}
	if err := b.sage.Get(t.Context(), "/sales_invoices/"+b.invoices[unpaid].id, &unpaidInv); err != nil {
		t.Fatal(err)
	}
	total := b.invoices[unpaid].total.String()
	again := b.create(t, "contact_payments", "contact_payment", map[string]any{"transaction_type_id": "CUSTOMER_RECEIPT",
		"contact_id": unpaidInv.Contact.ID, "bank_account_id": b.bank, "date": "2026-11-22", "total_amount": total,
		"allocated_artefacts": []map[string]any{{"artefact_id": b.invoices[unpaid].id, "amount": total}}})
	if _, err := h.client.SetXref(h.ctx(t), &ledgerv1.SetXrefRequest{TenantId: "acme", Kind: "payment",
		MagentoKey: strconv.FormatInt(unpaid, 10), Currency: "GBP", SageId: again.ID}); err != nil {
		t.Fatal(err)
	}
	third, err := h.client.Reconcile(h.ctx(t), &ledgerv1.ReconcileRequest{TenantId: "acme"})
	if err != nil {
		t.Fatalf("third pass: %v", err)
	}
	stillOpen := slices.DeleteFunc(slices.Clone(want), func(k string) bool { return k == admin.CodePaidInMagentoOutstandingInSage+" "+b.invoices[unpaid].id })
	open, err := h.client.ListReconcileFindings(h.ctx(t), &ledgerv1.ListReconcileFindingsRequest{TenantId: "acme"})
	if err != nil || !slices.Equal(findingKeys(open.GetFindings()), stillOpen) {
		t.Fatalf("open findings after the fix: %v %v (third pass found %v)", findingKeys(open.GetFindings()), err, findingKeys(third.GetFindings()))
	}
	all, _ := h.client.ListReconcileFindings(h.ctx(t), &ledgerv1.ListReconcileFindingsRequest{TenantId: "acme", IncludeResolved: true})
	if len(all.GetFindings()) != len(want) {
		t.Fatalf("findings with the resolved one: %v", findingKeys(all.GetFindings()))
	}
	t.Logf("passes and checks after seeding: %s", time.Since(start).Round(time.Millisecond))
}

func TestReconcileRefusesWhatItCannotDo(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createTenant(t, "acme")
	ctx := h.ctx(t)
	if _, err := h.client.Reconcile(ctx, &ledgerv1.ReconcileRequest{TenantId: "acme"}); status.Code(err) != codes.FailedPrecondition ||
		!strings.Contains(err.Error(), "ledgerctl sage connect --tenant acme") {
		t.Fatalf("without Sage: %v", err)
	}
	if _, err := h.client.Reconcile(ctx, &ledgerv1.ReconcileRequest{TenantId: "acme", Since: timestamppb.New(time.Now().Add(time.Hour))}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("since in the future: %v", err)
	}
	if _, err := h.client.GetDailyTotals(ctx, &ledgerv1.GetDailyTotalsRequest{TenantId: "acme", From: "01/11/2026"}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "YYYY-MM-DD") {
		t.Fatalf("bad date: %v", err)
	}
	if _, err := h.client.ListReconcileFindings(ctx, &ledgerv1.ListReconcileFindingsRequest{TenantId: "acme", Limit: 5000}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("limit: %v", err)
	}
}

// metrics scrapes the admin's /metrics.
func (h *harness) metrics(t *testing.T) string {
	t.Helper()
	code, _, body := h.get(t, h.http.URL+"/metrics", nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	return body
}
