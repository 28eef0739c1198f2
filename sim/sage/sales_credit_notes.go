package sagesim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// SalesCreditNote is a Sage sales credit note as the API returns it. It has the
// invoice's shape with credit_note_lines, a credit note number and
// original_invoice_date instead of a due date. Its outstanding_amount is what is
// still owed to the customer; refunds and allocations reduce it.
type SalesCreditNote struct {
	ID                        string           `json:"id"`
	DisplayedAs               string           `json:"displayed_as"`
	Path                      string           `json:"$path"`
	CreatedAt                 time.Time        `json:"created_at"`
	UpdatedAt                 time.Time        `json:"updated_at"`
	DeletedAt                 *time.Time       `json:"deleted_at"`
	TransactionType           Base             `json:"transaction_type"`
	Contact                   Base             `json:"contact"`
	CreditNoteNumberPrefix    string           `json:"credit_note_number_prefix"`
	CreditNoteNumber          string           `json:"credit_note_number"`
	ContactName               string           `json:"contact_name"`
	ContactReference          string           `json:"contact_reference"`
	Date                      string           `json:"date"`
	OriginalInvoiceDate       *string          `json:"original_invoice_date"`
	Reference                 string           `json:"reference"`
	MainAddress               *Address         `json:"main_address"`
	DeliveryAddress           *Address         `json:"delivery_address"`
	Notes                     string           `json:"notes"`
	TermsAndConditions        string           `json:"terms_and_conditions"`
	ShippingNetAmount         money.Amount     `json:"shipping_net_amount"`
	ShippingTaxRate           *Base            `json:"shipping_tax_rate"`
	ShippingTaxAmount         money.Amount     `json:"shipping_tax_amount"`
	ShippingTotalAmount       money.Amount     `json:"shipping_total_amount"`
	NetAmount                 money.Amount     `json:"net_amount"`
	TaxAmount                 money.Amount     `json:"tax_amount"`
	TotalAmount               money.Amount     `json:"total_amount"`
	TotalPaid                 money.Amount     `json:"total_paid"`
	OutstandingAmount         money.Amount     `json:"outstanding_amount"`
	Currency                  Base             `json:"currency"`
	ExchangeRate              string           `json:"exchange_rate"`
	InverseExchangeRate       string           `json:"inverse_exchange_rate"`
	BaseCurrencyNetAmount     money.Amount     `json:"base_currency_net_amount"`
	BaseCurrencyTaxAmount     money.Amount     `json:"base_currency_tax_amount"`
	BaseCurrencyTotalAmount   money.Amount     `json:"base_currency_total_amount"`
	BaseCurrencyOutstanding   money.Amount     `json:"base_currency_outstanding_amount"`
	BaseCurrencyShippingTotal money.Amount     `json:"base_currency_shipping_total_amount"`
	TotalQuantity             money.Amount     `json:"total_quantity"`
	TotalDiscountAmount       money.Amount     `json:"total_discount_amount"`
	Status                    Base             `json:"status"`
	Sent                      bool             `json:"sent"`
	VoidReason                *string          `json:"void_reason"`
	Editable                  bool             `json:"editable"`
	CreditNoteLines           []CreditNoteLine `json:"credit_note_lines"`
}

type salesCreditNoteInput struct {
	salesArtefactInput
	OriginalInvoiceDate    *string             `json:"original_invoice_date"`
	CreditNoteNumberPrefix *string             `json:"credit_note_number_prefix"`
	CreditNoteLines        *[]invoiceLineInput `json:"credit_note_lines"`
}

// CreditNotes returns a business's sales credit notes in creation order, voided
// ones included. An unknown business gives nil.
func (s *Server) CreditNotes(businessID string) []SalesCreditNote {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.businesses[businessID]
	if !ok {
		return nil
	}
	out := make([]SalesCreditNote, 0, len(b.creditNoteOrder))
	for _, id := range b.creditNoteOrder {
		out = append(out, *b.creditNotes[id])
	}
	return out
}

func validateCreditNoteLocked(b *business, in *salesCreditNoteInput, q Quirks) ([]APIError, *validArtefact) {
	extra := checkDate(in.OriginalInvoiceDate, "original_invoice_date", false)
	if tooLong(str(in.CreditNoteNumberPrefix), 6) {
		extra = append(extra, apiErr(CodeRecordInvalid, "Credit note number prefix is too long (maximum is 6 characters)", "credit_note_number_prefix"))
	}
	return validateSalesArtefactLocked(b, &in.salesArtefactInput, in.CreditNoteLines, "credit_note_lines", extra, q)
}

func (s *Server) buildCreditNoteLocked(b *business, in *salesCreditNoteInput, q Quirks, v *validArtefact,
	prev *SalesCreditNote, now time.Time) *SalesCreditNote {
	t := s.computeArtefactLocked(&in.salesArtefactInput, v, q)
	var id, prefix, number string
	created := now
	paid := money.Zero
	if prev == nil {
		id = s.newID()
		b.creditNoteNumber++
		prefix = "SCN-"
		if in.CreditNoteNumberPrefix != nil {
			prefix = *in.CreditNoteNumberPrefix
		}
		number = fmt.Sprintf("%s%d", prefix, b.creditNoteNumber)
	} else {
		id, prefix, number, created, paid = prev.ID, prev.CreditNoteNumberPrefix, prev.CreditNoteNumber, prev.CreatedAt, prev.TotalPaid
	}
	contact := v.contact
	cn := &SalesCreditNote{
		ID: id, DisplayedAs: number, Path: "/sales_credit_notes/" + id, CreatedAt: created, UpdatedAt: now,
		TransactionType:        Base{ID: "SALES_CREDIT_NOTE", DisplayedAs: "Sales Credit Note", Path: "/transaction_types/SALES_CREDIT_NOTE"},
		Contact:                Base{ID: contact.ID, DisplayedAs: contact.DisplayedAs, Path: contact.Path},
		CreditNoteNumberPrefix: prefix, CreditNoteNumber: number,
		ContactName: contact.Name, ContactReference: contact.Reference,
		Date: str(in.Date), OriginalInvoiceDate: in.OriginalInvoiceDate, Reference: str(in.Reference),
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
		Editable: true, CreditNoteLines: t.lines,
	}
	cn.BaseCurrencyOutstanding = toBase(cn.OutstandingAmount, t.rate)
	if str(in.StatusID) == "DRAFT" && (prev == nil || prev.Status.ID == "DRAFT") {
		cn.Status = artefactStatuses["DRAFT"]
	} else {
		cn.Status = paymentStatus(cn.OutstandingAmount, cn.TotalAmount)
	}
	return cn
}

func (s *Server) createCreditNote(r *http.Request, call *apiCall) response {
	fields, idem, bad := decodeObject(r, "sales_credit_note")
	if bad != nil {
		return *bad
	}
	var in salesCreditNoteInput
	if _, bad := mergeFields("sales_credit_note", nil, fields, &in); bad != nil {
		return *bad
	}
	q, _ := s.controls()
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	if resp, ok := s.replayLocked(b, "sales_credit_note", idem); ok {
		return resp
	}
	errs, v := validateCreditNoteLocked(b, &in, q)
	if len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	cn := s.buildCreditNoteLocked(b, &in, q, v, nil, now)
	b.creditNotes[cn.ID] = cn
	b.creditNoteOrder = append(b.creditNoteOrder, cn.ID)
	b.inputs[cn.ID] = fields
	adjustBalanceLocked(b, cn.Contact.ID, balanceContribution(false, cn.Status.ID, cn.OutstandingAmount), now)
	resp := jsonResponse(http.StatusCreated, cn)
	s.rememberLocked(b, "sales_credit_note", idem, resp)
	return resp
}

// updateCreditNote is PUT /sales_credit_notes/{id}, with the invoice's rules.
func (s *Server) updateCreditNote(r *http.Request, call *apiCall) response {
	fields, idem, bad := decodeObject(r, "sales_credit_note")
	if bad != nil {
		return *bad
	}
	q, _ := s.controls()
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	if resp, ok := s.replayLocked(b, "sales_credit_note", idem); ok {
		return resp
	}
	prev, ok := b.creditNotes[r.PathValue("id")]
	if !ok {
		return notFound()
	}
	if prev.Status.ID == "VOID" {
		return errorResponse(http.StatusUnprocessableEntity, apiErr(CodeRecordInvalid, "A void credit note cannot be edited.", ""))
	}
	var in salesCreditNoteInput
	merged, bad := mergeFields("sales_credit_note", b.inputs[prev.ID], fields, &in)
	if bad != nil {
		return *bad
	}
	errs, v := validateCreditNoteLocked(b, &in, q)
	if len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	cn := s.buildCreditNoteLocked(b, &in, q, v, prev, now)
	if errs := checkPaidEdit(prev.TotalPaid, prev.Contact.ID, prev.Currency.ID, cn.Contact.ID, cn.Currency.ID, cn.TotalAmount); len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	adjustBalanceLocked(b, prev.Contact.ID, balanceContribution(false, prev.Status.ID, prev.OutstandingAmount).Neg(), now)
	adjustBalanceLocked(b, cn.Contact.ID, balanceContribution(false, cn.Status.ID, cn.OutstandingAmount), now)
	b.creditNotes[cn.ID] = cn
	b.inputs[cn.ID] = merged
	resp := jsonResponse(http.StatusOK, cn)
	s.rememberLocked(b, "sales_credit_note", idem, resp)
	return resp
}

func (s *Server) getCreditNote(r *http.Request, call *apiCall) response {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cn, ok := call.business.creditNotes[r.PathValue("id")]
	if !ok {
		return notFound()
	}
	return jsonResponse(http.StatusOK, cn)
}

// listCreditNotes supports search (reference, credit note number or contact
// name), contact_id, status_id, from_date, to_date and updated_or_created_since.
func (s *Server) listCreditNotes(r *http.Request, call *apiCall) response {
	lp, bad := parseListParams(r)
	if bad != nil {
		return *bad
	}
	f := parseDocumentFilter(r)
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := call.business
	var items []*SalesCreditNote
	for _, id := range b.creditNoteOrder {
		cn := b.creditNotes[id]
		if !lp.changedSince(cn.CreatedAt, cn.UpdatedAt) || !f.match(cn.Contact.ID, cn.Status.ID, cn.Date) {
			continue
		}
		if lp.search != "" && !containsFold(cn.Reference, lp.search) && !containsFold(cn.CreditNoteNumber, lp.search) &&
			!containsFold(cn.ContactName, lp.search) {
			continue
		}
		items = append(items, cn)
	}
	return listOf(r, "sales_credit_notes", items, lp, func(cn *SalesCreditNote) any {
		return baseItem{ID: cn.ID, DisplayedAs: cn.DisplayedAs, Path: cn.Path, Reference: cn.Reference}
	})
}

// voidCreditNote is DELETE /sales_credit_notes/{id}: void with void_reason
// (200), or delete a draft (204).
func (s *Server) voidCreditNote(r *http.Request, call *apiCall) response {
	reason := strings.TrimSpace(r.URL.Query().Get("void_reason"))
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	cn, ok := b.creditNotes[r.PathValue("id")]
	if !ok {
		return notFound()
	}
	if cn.Status.ID == "DRAFT" {
		delete(b.creditNotes, cn.ID)
		delete(b.inputs, cn.ID)
		b.creditNoteOrder = slices.DeleteFunc(b.creditNoteOrder, func(id string) bool { return id == cn.ID })
		return response{status: http.StatusNoContent}
	}
	if errs := checkVoid("credit note", cn.Status.ID, reason, cn.TotalPaid); len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	adjustBalanceLocked(b, cn.Contact.ID, balanceContribution(false, cn.Status.ID, cn.OutstandingAmount).Neg(), now)
	voided := *cn
	voided.Status = artefactStatuses["VOID"]
	voided.VoidReason = &reason
	voided.OutstandingAmount = money.Zero
	voided.BaseCurrencyOutstanding = money.Zero
	voided.Editable = false
	voided.UpdatedAt = now
	b.creditNotes[cn.ID] = &voided
	return jsonResponse(http.StatusOK, &voided)
}
