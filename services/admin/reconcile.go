package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Reconciliation: a pass lists the Sage documents of a tenant's business
// changed (and deleted) since the last pass, and compares every one Ledger
// created (entity_xref) with Ledger's record and Magento's canonical state.
// What disagrees is a finding with a stable code and a message naming the
// fix. A pass never changes anything in Sage, Magento or Ledger's links: the
// operator decides. docs/reconciliation.md is the operator's guide.

// Finding codes. Each has a docs/runbooks.md entry.
const (
	// CodeSageDocumentVoided: a sales invoice or credit note Ledger created was voided in Sage.
	CodeSageDocumentVoided = "sage_document_voided"
	// CodeSageDocumentDeleted: a document Ledger created was deleted in Sage.
	CodeSageDocumentDeleted = "sage_document_deleted"
	// CodeSageTotalDiffers: a document's total in Sage is not Magento's.
	CodeSageTotalDiffers = "sage_total_differs"
	// CodeSageOutstandingDiffers: what Sage has outstanding on a document is
	// not what Magento and Ledger's own settlements leave.
	CodeSageOutstandingDiffers = "sage_outstanding_differs"
	// CodePaidInMagentoOutstandingInSage: Magento shows the invoice paid, Sage still has an
	// amount outstanding.
	CodePaidInMagentoOutstandingInSage = "paid_in_magento_outstanding_in_sage"
)

// FindingCodes lists every finding code.
var FindingCodes = []string{CodeSageDocumentVoided, CodeSageDocumentDeleted, CodeSageTotalDiffers, CodeSageOutstandingDiffers, CodePaidInMagentoOutstandingInSage}

// ReconcileStore is what reconciliation needs from libs/store.
type ReconcileStore interface {
	XrefsBySageID(ctx context.Context, tenantID string, ids []string) (map[string]store.Xref, error)
	ReconcileMark(ctx context.Context, tenantID string) (store.ReconcileMark, error)
	SetReconcileMark(ctx context.Context, tenantID string, m store.ReconcileMark) error
	RecordReconcile(ctx context.Context, tenantID string, passAt time.Time, docs []store.ReconcileDocument, findings []store.Finding) ([]store.Finding, error)
	Findings(ctx context.Context, f store.FindingFilter) ([]store.Finding, error)
	DailyTotals(ctx context.Context, tenantID string, from, to time.Time) ([]store.DailyTotal, error)
}

// Sage lists a pass reads, with the entity_xref kinds of the documents in
// each that Ledger created (the writer's xref kinds).
const (
	resInvoices    = "sales_invoices"
	resCreditNotes = "sales_credit_notes"
	resPayments    = "contact_payments"
)

var reconciledLists = []struct {
	resource string
	attrs    string
	kinds    map[string]bool
}{
	{resInvoices, "date,updated_at,status,currency,contact,total_amount,outstanding_amount,void_reason", map[string]bool{"invoice": true}},
	{resCreditNotes, "date,updated_at,status,currency,contact,total_amount,outstanding_amount,void_reason", map[string]bool{"credit_note": true}},
	{resPayments, "date,updated_at,currency,contact,total_amount,transaction_type", map[string]bool{"payment": true, "refund": true, "unitemised_credit": true}},
}

// Settlement kinds: Ledger's documents that reduce what an invoice has
// outstanding in Sage (a credit note's allocation, a receipt).
var settlementKinds = map[string]bool{"allocation": true, "payment": true, "unitemised_credit": true}

// Pass tuning.
const (
	// reconcilePage is items_per_page (Sage's maximum).
	reconcilePage = 200
	// reconcileFirstWindow is how far back a tenant's first pass looks.
	reconcileFirstWindow = 30 * 24 * time.Hour
	// reconcileOverlap moves each window's start back: deleted_since is
	// exclusive, and a change Sage stamps in the second of the last pass's
	// newest one must not fall between two passes. A document seen twice
	// changes nothing (findings are kept per document and code).
	reconcileOverlap = time.Second
	// maxListPages bounds $next-following of one list in one pass (200,000
	// documents); the rest is the next pass's.
	maxListPages = 1000
)

// sageDoc is what a pass reads of a listed document.
type sageDoc struct {
	ID                string        `json:"id"`
	DisplayedAs       string        `json:"displayed_as"`
	Date              string        `json:"date"`
	UpdatedAt         *time.Time    `json:"updated_at"`
	DeletedAt         *time.Time    `json:"deleted_at"`
	Status            *ref          `json:"status"`
	Currency          *ref          `json:"currency"`
	Contact           *ref          `json:"contact"`
	TotalAmount       *money.Amount `json:"total_amount"`
	OutstandingAmount *money.Amount `json:"outstanding_amount"`
	VoidReason        *string       `json:"void_reason"`
	// AllocatedArtefacts are a payment's or allocation's settlements.
	AllocatedArtefacts []struct {
		Artefact ref          `json:"artefact"`
		Amount   money.Amount `json:"amount"`
	} `json:"allocated_artefacts"`
}

type ref struct {
	ID string `json:"id"`
}

func (r *ref) id() string {
	if r == nil {
		return ""
	}
	return r.ID
}

// pass is one reconciliation pass of one tenant.
type pass struct {
	s    *Service
	t    store.Tenant
	sage *sage.Client
	shop *magento.Client // nil when the shop is not connected: Magento checks are skipped
	at   time.Time

	highWater time.Time
	out       *ledgerv1.ReconcileResponse
	// settled caches, per Sage contact, what Ledger's documents allocated to
	// each artefact, by xref kind.
	settled map[string]map[string]map[string]money.Amount
}

// Reconcile runs a pass now (ledgerctl reconcile).
func (s *Service) Reconcile(ctx context.Context, req *ledgerv1.ReconcileRequest) (*ledgerv1.ReconcileResponse, error) {
	var since *time.Time
	if req.GetSince() != nil {
		if err := req.GetSince().CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "since: %v", err)
		}
		t := req.GetSince().AsTime()
		if t.After(time.Now()) {
			return nil, status.Error(codes.InvalidArgument, "since is in the future: give a past date, e.g. --since 2026-01-01")
		}
		since = &t
	}
	return s.reconcile(ctx, req.GetTenantId(), since)
}

// reconcile runs one pass of the tenant over the window starting at since
// (nil: the last pass's high-water mark), stores its findings and moves the
// mark. Errors are gRPC statuses.
func (s *Service) reconcile(ctx context.Context, tenantID string, since *time.Time) (*ledgerv1.ReconcileResponse, error) {
	t, err := s.tenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if t.Binding.Status != store.StatusActive || t.Binding.SageBusinessID == "" {
		return nil, status.Errorf(codes.FailedPrecondition, "tenant %s: Sage is %s, not active: run ledgerctl sage connect --tenant %s",
			t.ID, sageStatus(t.Binding.Status), t.ID)
	}
	// Checks the tokens first: invalid_grant marks the binding token_revoked.
	if _, err := s.accessToken(ctx, t.ID); err != nil {
		return nil, err
	}
	from := time.Now().Add(-reconcileFirstWindow)
	switch mark, err := s.st.ReconcileMark(ctx, t.ID); {
	case since != nil:
		from = *since
	case err == nil:
		from = mark.HighWater
	case !errors.Is(err, store.ErrNotFound):
		return nil, s.storeErr(ctx, "load the reconciliation mark", err)
	}
	p := &pass{s: s, t: t, sage: s.sageFor(t), at: time.Now().UTC(), highWater: from,
		out:     &ledgerv1.ReconcileResponse{Since: timestamppb.New(from), Listed: map[string]int32{}},
		settled: map[string]map[string]map[string]money.Amount{}}
	if t.Binding.MagentoConnectionStatus == store.StatusActive && t.Binding.APIKey != "" {
		p.shop = &magento.Client{BaseURL: t.Binding.MagentoBaseURL, TenantID: t.ID, APIKey: t.Binding.APIKey, HTTP: s.hc}
	}
	start := from.Add(-reconcileOverlap).UTC().Format(time.RFC3339)
	for _, l := range reconciledLists {
		q := url.Values{"updated_or_created_since": {start}, "items_per_page": {strconv.Itoa(reconcilePage)}, "attributes": {l.attrs}}
		if err := p.list(ctx, l.resource, "/"+l.resource+"?"+q.Encode(), l.kinds, false); err != nil {
			return nil, p.failed(ctx, l.resource, err)
		}
		q = url.Values{"deleted_since": {start}, "items_per_page": {strconv.Itoa(reconcilePage)}, "attributes": {"deleted_at"}}
		if err := p.list(ctx, l.resource, "/"+l.resource+"?"+q.Encode(), l.kinds, true); err != nil {
			return nil, p.failed(ctx, l.resource, err)
		}
	}
	p.out.HighWater = timestamppb.New(p.highWater)
	if err := s.st.SetReconcileMark(ctx, t.ID, store.ReconcileMark{HighWater: p.highWater, Examined: int(p.out.Examined),
		Findings: len(p.out.Findings)}); err != nil {
		return nil, s.storeErr(ctx, "store the reconciliation mark", err)
	}
	s.log.InfoContext(ctx, "reconciliation pass done", "tenant_id", t.ID, "since", from, "high_water", p.highWater,
		"listed", p.out.Listed, "examined", p.out.Examined, "findings", len(p.out.Findings),
		"sage_calls", p.out.SageCalls, "magento_calls", p.out.MagentoCalls)
	return p.out, nil
}

// failed turns a failure of the pass into a status; the mark stays, so the
// next pass covers the same window again.
func (p *pass) failed(ctx context.Context, resource string, err error) error {
	var ae *sage.APIError
	var st interface{ GRPCStatus() *status.Status }
	switch {
	case errors.As(err, &st):
		return err
	case ctx.Err() != nil:
		return status.Errorf(codes.Canceled, "reconciliation of %s stopped: %v", p.t.ID, ctx.Err())
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		return status.Errorf(codes.FailedPrecondition, "Sage refused to list %s (%v): the Sage user who authorised Ledger needs access to Sales and Bank; "+
			"grant it or reconnect as the owner, then run the pass again", resource, err)
	case isStoreError(err):
		return p.s.storeErr(ctx, "store reconciliation results", err)
	}
	return status.Errorf(codes.Unavailable, "reconciliation of %s failed while reading %s: %v; nothing was lost, run it again later", p.t.ID, resource, err)
}

// storeFailure marks an error of Ledger's own database (as opposed to Sage's
// or the shop's).
type storeFailure struct{ error }

func (e storeFailure) Unwrap() error { return e.error }

func isStoreError(err error) bool {
	var sf storeFailure
	return errors.As(err, &sf)
}

// list follows a list's $next and checks each page.
func (p *pass) list(ctx context.Context, resource, path string, kinds map[string]bool, deleted bool) error {
	key := resource
	if deleted {
		key += ":deleted"
	}
	for page := 0; path != "" && page < maxListPages; page++ {
		var l sage.List[sageDoc]
		p.out.SageCalls++
		if err := sageGet(ctx, p.sage, path, &l); err != nil {
			return err
		}
		p.out.Listed[key] += int32(len(l.Items))
		if err := p.page(ctx, resource, l.Items, kinds, deleted); err != nil {
			return err
		}
		path = nextPath(l.Next)
	}
	return nil
}

// page compares one page's documents that Ledger created and stores what it
// saw and found.
func (p *pass) page(ctx context.Context, resource string, items []sageDoc, kinds map[string]bool, deleted bool) error {
	if len(items) == 0 {
		return nil
	}
	ids := make([]string, 0, len(items))
	for _, d := range items {
		ids = append(ids, d.ID)
		for _, ts := range []*time.Time{d.UpdatedAt, d.DeletedAt} {
			if ts != nil && ts.After(p.highWater) {
				p.highWater = *ts
			}
		}
	}
	links, err := p.s.st.XrefsBySageID(ctx, p.t.ID, ids)
	if err != nil {
		return storeFailure{err}
	}
	var docs []store.ReconcileDocument
	var findings []store.Finding
	for _, d := range items {
		x, ok := links[d.ID]
		if !ok || !kinds[x.Kind] {
			continue // not Ledger's: documents made in Sage by hand are the merchant's
		}
		p.out.Examined++
		doc, fs, err := p.check(ctx, resource, d, x, deleted)
		if err != nil {
			return err
		}
		if doc != nil {
			docs = append(docs, *doc)
		}
		findings = append(findings, fs...)
	}
	if len(docs) == 0 && len(findings) == 0 {
		return nil
	}
	opened, err := p.s.st.RecordReconcile(ctx, p.t.ID, p.at, docs, findings)
	if err != nil {
		return storeFailure{err}
	}
	for _, f := range opened {
		p.s.reconcileFindings.WithLabelValues(f.Code).Inc()
	}
	for _, f := range findings {
		p.out.Findings = append(p.out.Findings, findingProto(f, p.at))
	}
	return nil
}

// check compares one document Ledger created with Ledger's record and
// Magento. It returns what to remember of it (nil for none) and its findings.
func (p *pass) check(ctx context.Context, resource string, d sageDoc, x store.Xref, deleted bool) (*store.ReconcileDocument, []store.Finding, error) {
	f := finder{p: p, resource: resource, d: d, x: x}
	currency := x.Currency
	if c := d.Currency.id(); c != "" {
		currency = c
	}
	doc := &store.ReconcileDocument{SageID: d.ID, SageResource: resource, XrefKind: x.Kind, MagentoKey: x.MagentoKey,
		Currency: currency, SageStatus: d.Status.id()}
	if d.TotalAmount != nil {
		doc.SageTotal = *d.TotalAmount
	}
	if date, err := time.Parse(time.DateOnly, d.Date); err == nil {
		doc.Date = date
	} else if d.DeletedAt != nil {
		doc.Date = *d.DeletedAt
	} else {
		doc.Date = p.at
	}
	if deleted {
		doc.SageStatus, doc.SageTotal = "DELETED", money.Zero
		f.add(CodeSageDocumentDeleted, nil, nil, p.deletedMessage(d, x))
		if x.Kind == "invoice" || x.Kind == "credit_note" {
			if m, err := p.magentoTotal(ctx, x); err != nil {
				return nil, nil, err
			} else if m != nil {
				doc.MagentoTotal = &m.total
			}
		}
		return doc, f.found, nil
	}
	if resource == resPayments {
		// A payment is checked for deletion (above) and through the
		// outstanding amount of what it settled.
		if doc.SageStatus == "" {
			doc.SageStatus = "POSTED"
		}
		return doc, nil, nil
	}
	if doc.SageStatus == "VOID" {
		f.add(CodeSageDocumentVoided, d.TotalAmount, nil, p.voidedMessage(d, x))
		if m, err := p.magentoTotal(ctx, x); err != nil {
			return nil, nil, err
		} else if m != nil {
			doc.MagentoTotal = &m.total
		}
		return doc, f.found, nil
	}
	m, err := p.magentoTotal(ctx, x)
	switch {
	case err != nil:
		return nil, nil, err
	case m == nil:
		return doc, nil, nil // no shop, or Magento no longer has it: nothing to compare
	}
	doc.MagentoTotal = &m.total
	total, outstanding := doc.SageTotal, money.Zero
	if d.OutstandingAmount != nil {
		outstanding = *d.OutstandingAmount
	}
	if !strings.EqualFold(m.currency, currency) {
		f.add(CodeSageTotalDiffers, &total, &m.total, fmt.Sprintf("%s is in %s in Sage but %s in Magento; %s",
			p.describe(d, x), currency, m.currency, investigate))
		return doc, f.found, nil
	}
	var settled map[string]money.Amount // Ledger's settlements of this document, by kind
	// Ledger's own settlements are read only when they can explain a
	// difference: an invoice total above Magento's (an unitemised credit), or
	// an unpaid invoice with less outstanding than its total (credit notes).
	if x.Kind == "invoice" && (!total.Equal(m.total) || (m.state == "open" && !outstanding.Equal(total))) {
		if settled, err = p.settledBy(ctx, d.Contact.id(), d.ID); err != nil {
			return nil, nil, err
		}
	}
	// An invoice booked at its full value with an unitemised credit (policy
	// unitemised_credit) is Magento's total plus the credit Ledger received.
	// The daily totals count it at that value on both sides.
	expectTotal := m.total.Add(settled["unitemised_credit"])
	doc.MagentoTotal = &expectTotal
	if !total.Equal(expectTotal) {
		f.add(CodeSageTotalDiffers, &total, &expectTotal, fmt.Sprintf("%s totals %s %s in Sage but %s %s in Magento: it was edited in Sage, or "+
			"Magento's document changed after it was synced. Put the right amount back in Sage (edit it there, or void it and "+
			"relink a corrected one with %s); Ledger does not change it",
			p.describe(d, x), total, currency, expectTotal, currency, p.relink(x, currency)))
	}
	switch {
	case x.Kind == "credit_note":
		// Ledger settles every credit note it creates against its invoice (an
		// allocation) or refunds it; one on an order without an invoice stays
		// open as a credit to the customer.
		expect := total
		if p.linked(ctx, "allocation", x.MagentoKey, currency) || p.linked(ctx, "refund", x.MagentoKey, currency) {
			expect = money.Zero
		}
		if !outstanding.Equal(expect) {
			f.add(CodeSageOutstandingDiffers, &outstanding, &expect, fmt.Sprintf("%s has %s %s outstanding in Sage where Ledger's allocation or refund leaves %s: "+
				"an allocation or refund was removed or added in Sage. Investigate in Sage (the credit note's activity); Ledger does not change it",
				p.describe(d, x), outstanding, currency, expect))
		}
	case m.state == "paid" && outstanding.Sign() > 0:
		f.add(CodePaidInMagentoOutstandingInSage, &outstanding, &money.Zero, p.paidMessage(ctx, d, x, outstanding, currency))
	case m.state == "open":
		// Unpaid in Magento: Sage should have outstanding what Ledger's own
		// credit notes and credits leave.
		expect := total
		for kind, amt := range settled {
			if settlementKinds[kind] {
				expect = expect.Sub(amt)
			}
		}
		if !outstanding.Equal(expect) {
			f.add(CodeSageOutstandingDiffers, &outstanding, &expect, fmt.Sprintf("%s has %s %s outstanding in Sage, but Magento shows it unpaid and "+
				"Ledger's credit notes and credits leave %s: a payment or allocation was recorded or removed in Sage by hand. "+
				"Investigate in Sage (the invoice's activity); if the customer paid, record the payment in Magento so it syncs",
				p.describe(d, x), outstanding, currency, expect))
		}
	}
	return doc, f.found, nil
}

// finder collects a document's findings.
type finder struct {
	p        *pass
	resource string
	d        sageDoc
	x        store.Xref
	found    []store.Finding
}

func (f *finder) add(code string, sageAmt, magentoAmt *money.Amount, msg string) {
	cur := f.x.Currency
	if c := f.d.Currency.id(); c != "" {
		cur = c
	}
	f.found = append(f.found, store.Finding{Code: code, SageResource: f.resource, SageID: f.d.ID, XrefKind: f.x.Kind,
		MagentoKey: f.x.MagentoKey, Currency: cur, SageAmount: sageAmt, MagentoAmount: magentoAmt, Message: msg})
}

const investigate = "investigate in Sage and Magento which is right; Ledger changes nothing by itself"

// describe names a document for a message: "Sage sales invoice SI-12 (id …)
// of Magento invoice 42".
func (p *pass) describe(d sageDoc, x store.Xref) string {
	noun := map[string]string{resInvoices: "sales invoice", resCreditNotes: "sales credit note", resPayments: "contact payment"}
	what := map[string]string{"invoice": "invoice", "credit_note": "credit memo", "payment": "payment of invoice",
		"refund": "refund of credit memo", "unitemised_credit": "unitemised credit of invoice"}
	res := resInvoices
	switch x.Kind {
	case "credit_note":
		res = resCreditNotes
	case "payment", "refund", "unitemised_credit":
		res = resPayments
	}
	name := d.DisplayedAs
	if name == "" {
		name = x.Reference
	}
	if name != "" {
		name += " "
	}
	return fmt.Sprintf("Sage %s %s(id %s) of Magento %s %s", noun[res], name, d.ID, what[x.Kind], x.MagentoKey)
}

func (p *pass) relink(x store.Xref, currency string) string {
	return fmt.Sprintf("ledgerctl xref set --tenant %s --kind %s --key %s --currency %s --sage-id NEW_ID", p.t.ID, x.Kind, x.MagentoKey, currency)
}

func (p *pass) voidedMessage(d sageDoc, x store.Xref) string {
	reason := ""
	if d.VoidReason != nil && *d.VoidReason != "" {
		reason = fmt.Sprintf(" (reason: %q)", *d.VoidReason)
	}
	return fmt.Sprintf("%s was voided in Sage%s. If the void is right, cancel or refund it in Magento so both agree; if it is not, "+
		"create the document again in Sage and relink it with %s. Ledger does not re-create it by itself",
		p.describe(d, x), reason, p.relink(x, d.Currency.id()))
}

func (p *pass) deletedMessage(d sageDoc, x store.Xref) string {
	msg := fmt.Sprintf("%s was deleted in Sage. ", p.describe(d, x))
	if x.Kind == "payment" || x.Kind == "refund" || x.Kind == "unitemised_credit" {
		msg += "What it settled is outstanding again in Sage. "
	}
	return msg + fmt.Sprintf("If the deletion is right, change Magento so both agree; if it is not, record it again in Sage and relink it with %s "+
		"(Ledger's link still points at the deleted document, so a re-sync would not re-create it)", p.relink(x, x.Currency))
}

func (p *pass) paidMessage(ctx context.Context, d sageDoc, x store.Xref, outstanding money.Amount, currency string) string {
	base := fmt.Sprintf("Magento shows invoice %s paid, but %s still has %s %s outstanding. ", x.MagentoKey, p.describe(d, x), outstanding, currency)
	if p.linked(ctx, "payment", x.MagentoKey, currency) {
		return base + "Ledger recorded the payment, so it was deleted or unallocated in Sage: record it again in Sage and relink it with " +
			p.relink(store.Xref{Kind: "payment", MagentoKey: x.MagentoKey}, currency) + ", or investigate who removed it"
	}
	return base + fmt.Sprintf("Ledger has not recorded the payment: re-sync it with ledgerctl runs retry RUN, RUN being the invoice.paid run of "+
		"invoice %s (ledgerctl runs list --tenant %s shows it, with the reason it failed); if the shop never sent invoice.paid, requeue it in Magento",
		x.MagentoKey, p.t.ID)
}

// linked reports whether Ledger has a link of kind for the Magento key (a
// store failure counts as no link: the message then names the other fix).
func (p *pass) linked(ctx context.Context, kind, key, currency string) bool {
	_, err := p.s.st.Xref(ctx, p.t.ID, kind, key, currency)
	return err == nil
}

// magentoDoc is what a pass compares of Magento's canonical document.
type magentoDoc struct {
	total    money.Amount
	currency string
	state    string // invoices: open | paid | cancelled
}

// magentoTotal reads the Magento side of an invoice or credit note; nil when
// the shop is not connected, or the entity is gone (404: logged, not a
// finding of Sage's).
func (p *pass) magentoTotal(ctx context.Context, x store.Xref) (*magentoDoc, error) {
	if p.shop == nil {
		return nil, nil
	}
	if _, err := strconv.ParseInt(x.MagentoKey, 10, 64); err != nil {
		return nil, nil // not a Magento entity id
	}
	p.out.MagentoCalls++
	switch x.Kind {
	case "invoice":
		var inv magento.Invoice
		err := p.shop.Get(ctx, "/V1/byte8/invoice/"+x.MagentoKey, &inv)
		if err != nil {
			return nil, p.shopErr(ctx, x, err)
		}
		return &magentoDoc{total: inv.GrandTotal.Cents(), currency: inv.Currency, state: inv.State}, nil
	case "credit_note":
		var cm magento.CreditMemo
		if err := p.shop.Get(ctx, "/V1/byte8/creditmemo/"+x.MagentoKey, &cm); err != nil {
			return nil, p.shopErr(ctx, x, err)
		}
		return &magentoDoc{total: cm.GrandTotal.Cents(), currency: cm.Currency}, nil
	}
	return nil, nil
}

func (p *pass) shopErr(ctx context.Context, x store.Xref, err error) error {
	if magento.IsStatus(err, http.StatusNotFound) {
		p.s.log.WarnContext(ctx, "reconciliation: Magento no longer has the entity; its totals are not compared", "tenant_id", p.t.ID,
			"kind", x.Kind, "magento_key", x.MagentoKey)
		return nil
	}
	return status.Errorf(codes.Unavailable, "reconciliation of %s: reading %s %s from the shop failed: %v; run it again when the shop answers",
		p.t.ID, x.Kind, x.MagentoKey, err)
}

// settledBy returns what Ledger's own documents allocated to artefact, by
// xref kind: the contact's allocations and payments, listed once per pass.
func (p *pass) settledBy(ctx context.Context, contactID, artefact string) (map[string]money.Amount, error) {
	if contactID == "" {
		return nil, nil
	}
	if byArtefact, ok := p.settled[contactID]; ok {
		return byArtefact[artefact], nil
	}
	var docs []sageDoc
	for _, res := range []string{"contact_allocations", resPayments} {
		q := url.Values{"contact_id": {contactID}, "items_per_page": {strconv.Itoa(reconcilePage)}, "attributes": {"allocated_artefacts"}}
		path := "/" + res + "?" + q.Encode()
		for page := 0; path != "" && page < maxListPages; page++ {
			var l sage.List[sageDoc]
			p.out.SageCalls++
			if err := sageGet(ctx, p.sage, path, &l); err != nil {
				return nil, err
			}
			docs = append(docs, l.Items...)
			path = nextPath(l.Next)
		}
	}
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		ids = append(ids, d.ID)
	}
	links, err := p.s.st.XrefsBySageID(ctx, p.t.ID, ids)
	if err != nil {
		return nil, storeFailure{err}
	}
	byArtefact := map[string]map[string]money.Amount{}
	for _, d := range docs {
		x, ok := links[d.ID]
		if !ok || !settlementKinds[x.Kind] {
			continue
		}
		for _, a := range d.AllocatedArtefacts {
			if a.Amount.Sign() <= 0 {
				continue // the credit side of an allocation
			}
			if byArtefact[a.Artefact.ID] == nil {
				byArtefact[a.Artefact.ID] = map[string]money.Amount{}
			}
			byArtefact[a.Artefact.ID][x.Kind] = byArtefact[a.Artefact.ID][x.Kind].Add(a.Amount)
		}
	}
	p.settled[contactID] = byArtefact
	return byArtefact[artefact], nil
}

func findingProto(f store.Finding, seen time.Time) *ledgerv1.ReconcileFinding {
	out := &ledgerv1.ReconcileFinding{Code: f.Code, SageResource: f.SageResource, SageId: f.SageID, XrefKind: f.XrefKind,
		MagentoKey: f.MagentoKey, Currency: f.Currency, Message: f.Message}
	if f.SageAmount != nil {
		out.SageAmount = f.SageAmount.String()
	}
	if f.MagentoAmount != nil {
		out.MagentoAmount = f.MagentoAmount.String()
	}
	first, last := f.FirstSeenAt, f.LastSeenAt
	if first.IsZero() {
		first = seen
	}
	if last.IsZero() {
		last = seen
	}
	out.FirstSeenAt, out.LastSeenAt = timestamppb.New(first), timestamppb.New(last)
	if f.ResolvedAt != nil {
		out.ResolvedAt = timestamppb.New(*f.ResolvedAt)
	}
	return out
}

// ListReconcileFindings lists the tenant's stored findings.
func (s *Service) ListReconcileFindings(ctx context.Context, req *ledgerv1.ListReconcileFindingsRequest) (*ledgerv1.ListReconcileFindingsResponse, error) {
	t, err := s.tenant(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	limit := int(req.GetLimit())
	switch {
	case limit == 0:
		limit = 100
	case limit < 1 || limit > 1000:
		return nil, status.Errorf(codes.InvalidArgument, "limit %d: use 1–1000 (default 100)", limit)
	}
	fs, err := s.st.Findings(ctx, store.FindingFilter{TenantID: t.ID, Resolved: req.GetIncludeResolved(), Limit: limit})
	if err != nil {
		return nil, s.storeErr(ctx, "list findings", err)
	}
	out := &ledgerv1.ListReconcileFindingsResponse{}
	for _, f := range fs {
		out.Findings = append(out.Findings, findingProto(f, f.LastSeenAt))
	}
	return out, nil
}

// GetDailyTotals returns invoiced per day and currency, Magento against Sage,
// from the documents the reconciliation passes last saw (the
// reconcile_daily_totals view).
func (s *Service) GetDailyTotals(ctx context.Context, req *ledgerv1.GetDailyTotalsRequest) (*ledgerv1.GetDailyTotalsResponse, error) {
	t, err := s.tenant(ctx, req.GetTenantId())
	if err != nil {
		return nil, err
	}
	to := time.Now().UTC()
	from := to.AddDate(0, 0, -30)
	for _, d := range []struct {
		field, v string
		into     *time.Time
	}{{"from", req.GetFrom(), &from}, {"to", req.GetTo(), &to}} {
		if d.v == "" {
			continue
		}
		v, err := time.Parse(time.DateOnly, strings.TrimSpace(d.v))
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "%s %q: use a date YYYY-MM-DD, e.g. 2026-01-31", d.field, d.v)
		}
		*d.into = v
	}
	if to.Before(from) {
		return nil, status.Errorf(codes.InvalidArgument, "from %s is after to %s: swap them", from.Format(time.DateOnly), to.Format(time.DateOnly))
	}
	rows, err := s.st.DailyTotals(ctx, t.ID, from, to)
	if err != nil {
		return nil, s.storeErr(ctx, "daily totals", err)
	}
	out := &ledgerv1.GetDailyTotalsResponse{}
	for _, r := range rows {
		out.Totals = append(out.Totals, &ledgerv1.DailyTotal{Day: r.Day.Format(time.DateOnly), Currency: r.Currency, Invoices: r.Invoices,
			MagentoInvoiced: r.MagentoInvoiced.String(), SageInvoiced: r.SageInvoiced.String(), Difference: r.Difference.String()})
	}
	return out, nil
}

// registerReconcileMetrics registers the findings counter.
func (s *Service) registerReconcileMetrics() {
	s.reconcileFindings = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_admin_reconcile_findings_total",
		Help: "Reconciliation findings as they open (first seen, or seen again after being resolved), by code.",
	}, []string{"code"})
	for _, c := range FindingCodes {
		s.reconcileFindings.WithLabelValues(c)
	}
	s.reg.MustRegister(s.reconcileFindings)
}
