package sagesim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// SalesInvoice is a Sage sales invoice as the API returns it.
type SalesInvoice struct {
	ID                        string        `json:"id"`
	DisplayedAs               string        `json:"displayed_as"`
	Path                      string        `json:"$path"`
	CreatedAt                 time.Time     `json:"created_at"`
	UpdatedAt                 time.Time     `json:"updated_at"`
	DeletedAt                 *time.Time    `json:"deleted_at"`
	TransactionType           Base          `json:"transaction_type"`
	Contact                   Base          `json:"contact"`
	InvoiceNumberPrefix       string        `json:"invoice_number_prefix"`
	InvoiceNumber             string        `json:"invoice_number"`
	ContactName               string        `json:"contact_name"`
	ContactReference          string        `json:"contact_reference"`
	Date                      string        `json:"date"`
	DueDate                   string        `json:"due_date"`
	Reference                 string        `json:"reference"`
	MainAddress               *Address      `json:"main_address"`
	DeliveryAddress           *Address      `json:"delivery_address"`
	Notes                     string        `json:"notes"`
	TermsAndConditions        string        `json:"terms_and_conditions"`
	ShippingNetAmount         money.Amount  `json:"shipping_net_amount"`
	ShippingTaxRate           *Base         `json:"shipping_tax_rate"`
	ShippingTaxAmount         money.Amount  `json:"shipping_tax_amount"`
	ShippingTotalAmount       money.Amount  `json:"shipping_total_amount"`
	NetAmount                 money.Amount  `json:"net_amount"`
	TaxAmount                 money.Amount  `json:"tax_amount"`
	TotalAmount               money.Amount  `json:"total_amount"`
	TotalPaid                 money.Amount  `json:"total_paid"`
	OutstandingAmount         money.Amount  `json:"outstanding_amount"`
	Currency                  Base          `json:"currency"`
	ExchangeRate              string        `json:"exchange_rate"`
	InverseExchangeRate       string        `json:"inverse_exchange_rate"`
	BaseCurrencyNetAmount     money.Amount  `json:"base_currency_net_amount"`
	BaseCurrencyTaxAmount     money.Amount  `json:"base_currency_tax_amount"`
	BaseCurrencyTotalAmount   money.Amount  `json:"base_currency_total_amount"`
	BaseCurrencyOutstanding   money.Amount  `json:"base_currency_outstanding_amount"`
	TotalQuantity             money.Amount  `json:"total_quantity"`
	TotalDiscountAmount       money.Amount  `json:"total_discount_amount"`
	Status                    Base          `json:"status"`
	Sent                      bool          `json:"sent"`
	VoidReason                *string       `json:"void_reason"`
	Editable                  bool          `json:"editable"`
	InvoiceLines              []InvoiceLine `json:"invoice_lines"`
	BaseCurrencyShippingTotal money.Amount  `json:"base_currency_shipping_total_amount"`
}

type salesInvoiceInput struct {
	salesArtefactInput
	DueDate             *string             `json:"due_date"`
	InvoiceNumberPrefix *string             `json:"invoice_number_prefix"`
	InvoiceLines        *[]invoiceLineInput `json:"invoice_lines"`
}

// Invoices returns a business's sales invoices in creation order, voided ones
// included. An unknown business gives nil.
func (s *Server) Invoices(businessID string) []SalesInvoice {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.businesses[businessID]
	if !ok {
		return nil
	}
	out := make([]SalesInvoice, 0, len(b.invoiceOrder))
	for _, id := range b.invoiceOrder {
		out = append(out, *b.invoices[id])
	}
	return out
}

// validateSalesInvoiceLocked checks an invoice (POST or merged PUT). s.mu must
// be held.
func validateSalesInvoiceLocked(b *business, in *salesInvoiceInput, q Quirks) ([]APIError, *validArtefact) {
	extra := checkDate(in.DueDate, "due_date", false)
	if tooLong(str(in.InvoiceNumberPrefix), 6) {
		extra = append(extra, apiErr(CodeRecordInvalid, "Invoice number prefix is too long (maximum is 6 characters)", "invoice_number_prefix"))
	}
	return validateSalesArtefactLocked(b, &in.salesArtefactInput, in.InvoiceLines, "invoice_lines", extra, q)
}

// buildSalesInvoiceLocked builds the invoice from a validated input. prev is the
// invoice a PUT replaces (nil on POST): its id, number, creation time and
// payments are kept.
func (s *Server) buildSalesInvoiceLocked(b *business, in *salesInvoiceInput, q Quirks, v *validArtefact,
	prev *SalesInvoice, now time.Time) *SalesInvoice {
	t := s.computeArtefactLocked(&in.salesArtefactInput, v, q)
	var id, prefix, number string
	created := now
	paid := money.Zero
	if prev == nil {
		id = s.newID()
		b.invoiceNumber++
		prefix = "SI-"
		if in.InvoiceNumberPrefix != nil {
			prefix = *in.InvoiceNumberPrefix
		}
		number = fmt.Sprintf("%s%d", prefix, b.invoiceNumber)
	} else {
		id, prefix, number, created, paid = prev.ID, prev.InvoiceNumberPrefix, prev.InvoiceNumber, prev.CreatedAt, prev.TotalPaid
	}
	contact := v.contact
	date := str(in.Date)
	due := str(in.DueDate)
	if due == "" {
		due = dueDate(date, contact)
	}
	inv := &SalesInvoice{
		ID: id, DisplayedAs: number, Path: "/sales_invoices/" + id, CreatedAt: created, UpdatedAt: now,
		TransactionType:     Base{ID: "SALES_INVOICE", DisplayedAs: "Sales Invoice", Path: "/transaction_types/SALES_INVOICE"},
		Contact:             Base{ID: contact.ID, DisplayedAs: contact.DisplayedAs, Path: contact.Path},
		InvoiceNumberPrefix: prefix, InvoiceNumber: number,
		ContactName: contact.Name, ContactReference: contact.Reference,
		Date: date, DueDate: due, Reference: str(in.Reference),
		Notes: str(in.Notes), TermsAndConditions: str(in.TermsAndConditions),
		MainAddress: t.mainAddress, DeliveryAddress: t.deliveryAddress,
		ShippingNetAmount: t.shipNet, ShippingTaxRate: t.shipRate, ShippingTaxAmount: t.shipTax,
		ShippingTotalAmount: t.shipTotal,
		NetAmount:           t.net, TaxAmount: t.tax, TotalAmount: t.total,
		TotalPaid: paid, OutstandingAmount: t.total.Sub(paid),
		Currency: t.currency, ExchangeRate: t.exchangeRate, InverseExchangeRate: t.inverseRate,
		BaseCurrencyNetAmount: t.baseNet, BaseCurrencyTaxAmount: t.baseTax, BaseCurrencyTotalAmount: t.baseTotal,
		BaseCurrencyShippingTotal: t.baseShipTotal,
		TotalQuantity:             t.quantity, TotalDiscountAmount: t.discount,
		Editable: true, InvoiceLines: t.lines,
	}
	inv.BaseCurrencyOutstanding = toBase(inv.OutstandingAmount, t.rate)
	if str(in.StatusID) == "DRAFT" && (prev == nil || prev.Status.ID == "DRAFT") {
		inv.Status = artefactStatuses["DRAFT"]
	} else {
		inv.Status = paymentStatus(inv.OutstandingAmount, inv.TotalAmount)
	}
	return inv
}

func (s *Server) createSalesInvoice(r *http.Request, call *apiCall) response {
	fields, idem, bad := decodeObject(r, "sales_invoice")
	if bad != nil {
		return *bad
	}
	var in salesInvoiceInput
	if _, bad := mergeFields("sales_invoice", nil, fields, &in); bad != nil {
		return *bad
	}
	q, _ := s.controls()
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	if resp, ok := s.replayLocked(b, "sales_invoice", idem); ok {
		return resp
	}
	errs, v := validateSalesInvoiceLocked(b, &in, q)
	if len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	inv := s.buildSalesInvoiceLocked(b, &in, q, v, nil, now)
	b.invoices[inv.ID] = inv
	b.invoiceOrder = append(b.invoiceOrder, inv.ID)
	b.inputs[inv.ID] = fields
	adjustBalanceLocked(b, inv.Contact.ID, balanceContribution(true, inv.Status.ID, inv.OutstandingAmount), now)
	resp := jsonResponse(http.StatusCreated, inv)
	s.rememberLocked(b, "sales_invoice", idem, resp)
	return resp
}

// updateSalesInvoice is PUT /sales_invoices/{id}: the fields sent replace the
// stored ones (invoice_lines as a whole), the invoice is validated and computed
// again, and its id, number and payments are kept. A void invoice cannot be
// edited; one with payments keeps its contact and currency and cannot fall below
// what has been paid [I].
func (s *Server) updateSalesInvoice(r *http.Request, call *apiCall) response {
	fields, idem, bad := decodeObject(r, "sales_invoice")
	if bad != nil {
		return *bad
	}
	q, _ := s.controls()
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	if resp, ok := s.replayLocked(b, "sales_invoice", idem); ok {
		return resp
	}
	prev, ok := b.invoices[r.PathValue("id")]
	if !ok {
		return notFound()
	}
	if prev.Status.ID == "VOID" {
		return errorResponse(http.StatusUnprocessableEntity, apiErr(CodeRecordInvalid, "A void invoice cannot be edited.", ""))
	}
	var in salesInvoiceInput
	merged, bad := mergeFields("sales_invoice", b.inputs[prev.ID], fields, &in)
	if bad != nil {
		return *bad
	}
	errs, v := validateSalesInvoiceLocked(b, &in, q)
	if len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	inv := s.buildSalesInvoiceLocked(b, &in, q, v, prev, now)
	if errs := checkPaidEdit(prev.TotalPaid, prev.Contact.ID, prev.Currency.ID, inv.Contact.ID, inv.Currency.ID, inv.TotalAmount); len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	adjustBalanceLocked(b, prev.Contact.ID, balanceContribution(true, prev.Status.ID, prev.OutstandingAmount).Neg(), now)
	adjustBalanceLocked(b, inv.Contact.ID, balanceContribution(true, inv.Status.ID, inv.OutstandingAmount), now)
	b.invoices[inv.ID] = inv
	b.inputs[inv.ID] = merged
	resp := jsonResponse(http.StatusOK, inv)
	s.rememberLocked(b, "sales_invoice", idem, resp)
	return resp
}

// checkPaidEdit rejects a PUT that would move a document with payments to
// another contact or currency, or below what has been paid [I].
func checkPaidEdit(paid money.Amount, oldContact, oldCurrency, newContact, newCurrency string, newTotal money.Amount) []APIError {
	if paid.IsZero() {
		return nil
	}
	var errs []APIError
	if oldContact != newContact {
		errs = append(errs, apiErr(CodeRecordInvalid, "The contact cannot be changed once payments are allocated.", "contact_id"))
	}
	if oldCurrency != newCurrency {
		errs = append(errs, apiErr(CodeRecordInvalid, "The currency cannot be changed once payments are allocated.", "currency_id"))
	}
	if newTotal.Cmp(paid) < 0 {
		errs = append(errs, apiErr(CodeRecordInvalid, "The total amount cannot be less than the amount already paid.", "total_amount"))
	}
	return errs
}

func (s *Server) getSalesInvoice(r *http.Request, call *apiCall) response {
	s.mu.RLock()
	defer s.mu.RUnlock()
	inv, ok := call.business.invoices[r.PathValue("id")]
	if !ok {
		return notFound()
	}
	return jsonResponse(http.StatusOK, inv)
}

// documentFilter is the list filter shared by invoices and credit notes:
// contact_id, status_id, from_date, to_date (inclusive, on the document date).
type documentFilter struct{ contactID, statusID, from, to string }

func parseDocumentFilter(r *http.Request) documentFilter {
	q := r.URL.Query()
	return documentFilter{q.Get("contact_id"), q.Get("status_id"), q.Get("from_date"), q.Get("to_date")}
}

func (f documentFilter) match(contactID, statusID, date string) bool {
	return (f.contactID == "" || contactID == f.contactID) && (f.statusID == "" || statusID == f.statusID) &&
		(f.from == "" || date >= f.from) && (f.to == "" || date <= f.to)
}

// listSalesInvoices supports search (reference, invoice number or contact name),
// contact_id, status_id, from_date, to_date and updated_or_created_since.
func (s *Server) listSalesInvoices(r *http.Request, call *apiCall) response {
	lp, bad := parseListParams(r)
	if bad != nil {
		return *bad
	}
	f := parseDocumentFilter(r)
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := call.business
	var items []*SalesInvoice
	for _, id := range b.invoiceOrder {
		inv := b.invoices[id]
		if !lp.changedSince(inv.CreatedAt, inv.UpdatedAt) || !f.match(inv.Contact.ID, inv.Status.ID, inv.Date) {
			continue
		}
		if lp.search != "" && !containsFold(inv.Reference, lp.search) && !containsFold(inv.InvoiceNumber, lp.search) &&
			!containsFold(inv.ContactName, lp.search) {
			continue
		}
		items = append(items, inv)
	}
	return listOf(r, "sales_invoices", items, lp, func(inv *SalesInvoice) any {
		return baseItem{ID: inv.ID, DisplayedAs: inv.DisplayedAs, Path: inv.Path, Reference: inv.Reference}
	})
}

// checkVoid answers whether a document may be voided with reason: not twice,
// not without a reason (≤200), not while payments are allocated to it [I].
func checkVoid(kind, status, reason string, paid money.Amount) []APIError {
	switch {
	case status == "VOID":
		return []APIError{apiErr(CodeRecordInvalid, "The "+kind+" has already been voided.", "")}
	case reason == "":
		return []APIError{required("void_reason")}
	case tooLong(reason, 200):
		return []APIError{apiErr(CodeRecordInvalid, "Void reason is too long (maximum is 200 characters)", "void_reason")}
	case !paid.IsZero():
		return []APIError{apiErr(CodeRecordInvalid, "The "+kind+" has payments or allocations; remove them before voiding.", "")}
	}
	return nil
}

// voidSalesInvoice is DELETE /sales_invoices/{id}: it voids the invoice (200 with
// the voided invoice) and requires void_reason, except for a draft, which is
// deleted outright (204).
func (s *Server) voidSalesInvoice(r *http.Request, call *apiCall) response {
	reason := strings.TrimSpace(r.URL.Query().Get("void_reason"))
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	inv, ok := b.invoices[r.PathValue("id")]
	if !ok {
		return notFound()
	}
	if inv.Status.ID == "DRAFT" {
		delete(b.invoices, inv.ID)
		delete(b.inputs, inv.ID)
		b.invoiceOrder = slices.DeleteFunc(b.invoiceOrder, func(id string) bool { return id == inv.ID })
		return response{status: http.StatusNoContent}
	}
	if errs := checkVoid("invoice", inv.Status.ID, reason, inv.TotalPaid); len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	adjustBalanceLocked(b, inv.Contact.ID, balanceContribution(true, inv.Status.ID, inv.OutstandingAmount).Neg(), now)
	voided := *inv
	voided.Status = artefactStatuses["VOID"]
	voided.VoidReason = &reason
	voided.OutstandingAmount = money.Zero
	voided.BaseCurrencyOutstanding = money.Zero
	voided.Editable = false
	voided.UpdatedAt = now
	b.invoices[inv.ID] = &voided
	return jsonResponse(http.StatusOK, &voided)
}
