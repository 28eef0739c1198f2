package sagesim

import (
	"fmt"
	"net/http"
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

// InvoiceLine is one line of a sales invoice.
type InvoiceLine struct {
	ID                      string       `json:"id"`
	DisplayedAs             string       `json:"displayed_as"`
	Description             string       `json:"description"`
	LedgerAccount           Base         `json:"ledger_account"`
	Quantity                money.Amount `json:"quantity"`
	UnitPrice               money.Amount `json:"unit_price"`
	UnitPriceIncludesTax    bool         `json:"unit_price_includes_tax"`
	DiscountAmount          money.Amount `json:"discount_amount"`
	NetAmount               money.Amount `json:"net_amount"`
	TaxRate                 *Base        `json:"tax_rate"`
	TaxAmount               money.Amount `json:"tax_amount"`
	TotalAmount             money.Amount `json:"total_amount"`
	EUGoodsServicesType     *Base        `json:"eu_goods_services_type"`
	BaseCurrencyNetAmount   money.Amount `json:"base_currency_net_amount"`
	BaseCurrencyTaxAmount   money.Amount `json:"base_currency_tax_amount"`
	BaseCurrencyTotalAmount money.Amount `json:"base_currency_total_amount"`
}

type salesInvoiceInput struct {
	IdempotencyID       string              `json:"idempotency_id"`
	ContactID           *string             `json:"contact_id"`
	Date                *string             `json:"date"`
	DueDate             *string             `json:"due_date"`
	Reference           *string             `json:"reference"`
	Notes               *string             `json:"notes"`
	TermsAndConditions  *string             `json:"terms_and_conditions"`
	InvoiceNumberPrefix *string             `json:"invoice_number_prefix"`
	StatusID            *string             `json:"status_id"`
	CurrencyID          *string             `json:"currency_id"`
	ExchangeRate        *money.Amount       `json:"exchange_rate"`
	ShippingNetAmount   *money.Amount       `json:"shipping_net_amount"`
	ShippingTaxRateID   *string             `json:"shipping_tax_rate_id"`
	ShippingTaxAmount   *money.Amount       `json:"shipping_tax_amount"`
	MainAddress         *addressInput       `json:"main_address"`
	DeliveryAddress     *addressInput       `json:"delivery_address"`
	InvoiceLines        *[]invoiceLineInput `json:"invoice_lines"`
}

type invoiceLineInput struct {
	Description           *string       `json:"description"`
	LedgerAccountID       *string       `json:"ledger_account_id"`
	UnitPrice             *money.Amount `json:"unit_price"`
	Quantity              *money.Amount `json:"quantity"`
	TaxRateID             *string       `json:"tax_rate_id"`
	TaxAmount             *money.Amount `json:"tax_amount"`
	CurrencyTaxAmount     *money.Amount `json:"currency_tax_amount"`
	UnitPriceIncludesTax  bool          `json:"unit_price_includes_tax"`
	DiscountAmount        *money.Amount `json:"discount_amount"`
	EUGoodsServicesTypeID *string       `json:"eu_goods_services_type_id"`
}

var invoiceStatuses = map[string]Base{
	"DRAFT":  {ID: "DRAFT", DisplayedAs: "Draft", Path: "/artefact_statuses/DRAFT"},
	"UNPAID": {ID: "UNPAID", DisplayedAs: "Unpaid", Path: "/artefact_statuses/UNPAID"},
	"VOID":   {ID: "VOID", DisplayedAs: "Void", Path: "/artefact_statuses/VOID"},
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

// resolvedLine is a validated line with what its computation needs.
type resolvedLine struct {
	in      *invoiceLineInput
	ledger  LedgerAccount
	taxRate *TaxRate
}

// validateSalesInvoiceLocked checks in and returns the error array (umbrella
// included) or what building the invoice needs. s.mu must be held.
func validateSalesInvoiceLocked(b *business, in *salesInvoiceInput, q Quirks) ([]APIError, *Contact, *TaxRate, []resolvedLine) {
	var header, lineErrs []APIError
	var contact *Contact
	if id := str(in.ContactID); id == "" {
		header = append(header, required("contact_id"))
	} else if c, ok := b.contacts[id]; !ok || c.DeletedAt != nil || !c.IsCustomer() {
		// Sage answers a vendor (or unknown) contact on a sales document with the
		// type's name and no $source (GH29).
		header = append(header, apiErr(CodeRecordInvalid, "Couldn't find Customer.", ""))
	} else {
		contact = c
	}
	if d := str(in.Date); d == "" {
		header = append(header, required("date"))
	} else if _, err := time.Parse(time.DateOnly, d); err != nil {
		header = append(header, apiErr(CodeRecordInvalid, "is not a valid date (YYYY-MM-DD)", "date"))
	}
	if d := str(in.DueDate); d != "" {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			header = append(header, apiErr(CodeRecordInvalid, "is not a valid date (YYYY-MM-DD)", "due_date"))
		}
	}
	if tooLong(str(in.Reference), 25) {
		header = append(header, apiErr(CodeRecordInvalid, "Reference is too long (maximum is 25 characters)", "reference"))
	}
	if tooLong(str(in.Notes), 2000) {
		header = append(header, apiErr(CodeRecordInvalid, "Notes is too long (maximum is 2000 characters)", "notes"))
	}
	if tooLong(str(in.TermsAndConditions), 2000) {
		header = append(header, apiErr(CodeRecordInvalid, "Terms and conditions is too long (maximum is 2000 characters)", "terms_and_conditions"))
	}
	if tooLong(str(in.InvoiceNumberPrefix), 6) {
		header = append(header, apiErr(CodeRecordInvalid, "Invoice number prefix is too long (maximum is 6 characters)", "invoice_number_prefix"))
	}
	if st := str(in.StatusID); st != "" && st != "DRAFT" && st != "UNPAID" {
		header = append(header, apiErr(CodeRecordInvalid, "is not a valid status for a new invoice", "status_id"))
	}
	if cur := str(in.CurrencyID); cur != "" {
		if _, ok := currencyByID(cur); !ok {
			header = append(header, apiErr(CodeRecordInvalid, "Couldn't find currency.", "currency_id"))
		}
	}
	var shipRate *TaxRate
	if id := str(in.ShippingTaxRateID); id != "" {
		if t, ok := taxRateByID(id); ok {
			shipRate = &t
		} else {
			header = append(header, apiErr(CodeRecordInvalid, "Couldn't find tax rate.", "shipping_tax_rate_id"))
		}
	}
	if in.InvoiceLines == nil || len(*in.InvoiceLines) == 0 {
		header = append(header, required("invoice_lines"))
	}
	var lines []resolvedLine
	if in.InvoiceLines != nil {
		for i := range *in.InvoiceLines {
			l := &(*in.InvoiceLines)[i]
			rl := resolvedLine{in: l}
			if desc := str(l.Description); strings.TrimSpace(desc) == "" {
				lineErrs = append(lineErrs, required("line_items.description"))
			} else {
				lineErrs = append(lineErrs, checkHTMLEntities(q, desc)...)
			}
			ledgerOK := false
			if id := str(l.LedgerAccountID); id == "" {
				lineErrs = append(lineErrs, required("line_items.ledger_account_id"))
			} else if la, ok := b.ledgerAccount(id); !ok {
				lineErrs = append(lineErrs, apiErr(CodeRecordNotFound, "Couldn't find record.", "line_items.ledger_account_id"))
			} else if !la.VisibleInSales {
				lineErrs = append(lineErrs, apiErr(CodeRecordInvalid, "The ledger account is not valid for sales.", "line_items.ledger_account_id"))
			} else {
				rl.ledger, ledgerOK = la, true
			}
			if l.UnitPrice == nil {
				lineErrs = append(lineErrs, required("line_items.unit_price"))
			}
			if id := str(l.TaxRateID); id != "" {
				if t, ok := taxRateByID(id); ok {
					rl.taxRate = &t
				} else {
					lineErrs = append(lineErrs, apiErr(CodeRecordInvalid, "Couldn't find tax rate.", "line_items.tax_rate_id"))
				}
			} else if ledgerOK && rl.ledger.TaxRate != nil {
				// Without tax_rate_id the ledger account's default rate applies.
				t, _ := taxRateByID(rl.ledger.TaxRate.ID)
				rl.taxRate = &t
			}
			if l.TaxAmount == nil && rl.taxRate != nil && !rl.taxRate.ZeroType {
				lineErrs = append(lineErrs, required("line_items.tax_amount"))
			}
			lineErrs = append(lineErrs, checkCurrencyTaxAmount(q, l)...)
			lines = append(lines, rl)
		}
	}
	if errs := withUmbrella(q, header, lineErrs); len(errs) > 0 {
		return errs, nil, nil, nil
	}
	return nil, contact, shipRate, lines
}

func (s *Server) createSalesInvoice(r *http.Request, call *apiCall) response {
	var in salesInvoiceInput
	if bad := decodeRoot(r, "sales_invoice", &in); bad != nil {
		return *bad
	}
	q, _ := s.controls()
	now := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := call.business
	if resp, ok := s.replayLocked(b, "sales_invoice", in.IdempotencyID); ok {
		return resp
	}
	errs, contact, shipRate, lines := validateSalesInvoiceLocked(b, &in, q)
	if len(errs) > 0 {
		return errorResponse(http.StatusUnprocessableEntity, errs...)
	}
	inv := s.buildSalesInvoiceLocked(b, &in, q, contact, shipRate, lines, now)
	b.invoices[inv.ID] = inv
	b.invoiceOrder = append(b.invoiceOrder, inv.ID)
	if contact.Deletable {
		// A contact with transactions can no longer be deleted.
		c := *contact
		c.Deletable = false
		b.contacts[c.ID] = &c
	}
	resp := jsonResponse(http.StatusCreated, inv)
	s.rememberLocked(b, "sales_invoice", in.IdempotencyID, resp)
	return resp
}

// buildSalesInvoiceLocked computes lines and totals the way Sage does: line net =
// quantity × unit price − discount (2 dp), line tax as sent (inferred 0 for zero,
// exempt and no-tax rates), shipping tax per quirk §32, header = Σ lines +
// shipping.
func (s *Server) buildSalesInvoiceLocked(b *business, in *salesInvoiceInput, q Quirks, contact *Contact,
	shipRate *TaxRate, lines []resolvedLine, now time.Time) *SalesInvoice {
	one := money.MustParse("1")
	rate := one
	currency := currencies[0]
	if cur := str(in.CurrencyID); cur != "" {
		currency, _ = currencyByID(cur)
	}
	if in.ExchangeRate != nil && !in.ExchangeRate.IsZero() && currency.ID != currencies[0].ID {
		rate = *in.ExchangeRate
	}
	toBase := func(a money.Amount) money.Amount { return a.MulDecimal(rate.Decimal()).Cents() }

	id := s.newID()
	b.invoiceNumber++
	prefix := "SI-"
	if in.InvoiceNumberPrefix != nil {
		prefix = *in.InvoiceNumberPrefix
	}
	number := fmt.Sprintf("%s%d", prefix, b.invoiceNumber)
	date := str(in.Date)
	due := str(in.DueDate)
	if due == "" {
		days := 30
		if contact.CreditDays > 0 {
			days = contact.CreditDays
		}
		d, _ := time.Parse(time.DateOnly, date)
		due = d.AddDate(0, 0, days).Format(time.DateOnly)
	}
	status := invoiceStatuses["UNPAID"]
	if str(in.StatusID) == "DRAFT" {
		status = invoiceStatuses["DRAFT"]
	}
	inv := &SalesInvoice{
		ID: id, DisplayedAs: number, Path: "/sales_invoices/" + id, CreatedAt: now, UpdatedAt: now,
		TransactionType:     Base{ID: "SALES_INVOICE", DisplayedAs: "Sales Invoice", Path: "/transaction_types/SALES_INVOICE"},
		Contact:             Base{ID: contact.ID, DisplayedAs: contact.DisplayedAs, Path: contact.Path},
		InvoiceNumberPrefix: prefix, InvoiceNumber: number,
		ContactName: contact.Name, ContactReference: contact.Reference,
		Date: date, DueDate: due, Reference: str(in.Reference),
		Notes: str(in.Notes), TermsAndConditions: str(in.TermsAndConditions),
		Currency: currency, ExchangeRate: rate.Decimal().String(),
		InverseExchangeRate: one.Decimal().DivRound(rate.Decimal(), 10).String(),
		Status:              status, Editable: true,
	}
	inv.MainAddress = contact.MainAddress.clone()
	if in.MainAddress != nil {
		inv.MainAddress = in.MainAddress.toAddress("", "ACCOUNTS", false)
	}
	inv.DeliveryAddress = deliveryAddress(q, in.DeliveryAddress, inv.MainAddress, contact)

	linesNet, linesTax := money.Zero, money.Zero
	for _, rl := range lines {
		l := rl.in
		qty := one
		if l.Quantity != nil {
			qty = *l.Quantity
		}
		discount := money.Zero
		if l.DiscountAmount != nil {
			discount = l.DiscountAmount.Cents()
		}
		gross := qty.Mul(*l.UnitPrice).Cents().Sub(discount)
		tax := money.Zero
		if l.TaxAmount != nil && (rl.taxRate == nil || !rl.taxRate.ZeroType) {
			tax = l.TaxAmount.Cents()
		}
		net := gross
		if l.UnitPriceIncludesTax {
			net = gross.Sub(tax)
		}
		line := InvoiceLine{
			ID: s.newID(), DisplayedAs: str(l.Description), Description: str(l.Description),
			LedgerAccount: rl.ledger.base(), Quantity: qty, UnitPrice: *l.UnitPrice,
			UnitPriceIncludesTax: l.UnitPriceIncludesTax, DiscountAmount: discount,
			NetAmount: net, TaxAmount: tax, TotalAmount: net.Add(tax),
			BaseCurrencyNetAmount: toBase(net), BaseCurrencyTaxAmount: toBase(tax), BaseCurrencyTotalAmount: toBase(net.Add(tax)),
		}
		if rl.taxRate != nil {
			line.TaxRate = rl.taxRate.base()
		}
		if t := str(l.EUGoodsServicesTypeID); t != "" {
			line.EUGoodsServicesType = &Base{ID: t, DisplayedAs: t, Path: "/eu_goods_services_types/" + t}
		}
		inv.InvoiceLines = append(inv.InvoiceLines, line)
		inv.TotalQuantity = inv.TotalQuantity.Add(qty)
		inv.TotalDiscountAmount = inv.TotalDiscountAmount.Add(discount)
		linesNet, linesTax = linesNet.Add(net), linesTax.Add(tax)
	}

	if in.ShippingNetAmount != nil {
		inv.ShippingNetAmount = in.ShippingNetAmount.Cents()
	}
	inv.ShippingTaxAmount = shippingTax(q, inv.ShippingNetAmount, shipRate, in.ShippingTaxAmount)
	if shipRate != nil {
		inv.ShippingTaxRate = shipRate.base()
	}
	inv.ShippingTotalAmount = inv.ShippingNetAmount.Add(inv.ShippingTaxAmount)

	inv.NetAmount = linesNet.Add(inv.ShippingNetAmount)
	inv.TaxAmount = linesTax.Add(inv.ShippingTaxAmount)
	inv.TotalAmount = inv.NetAmount.Add(inv.TaxAmount)
	inv.OutstandingAmount = inv.TotalAmount
	inv.BaseCurrencyNetAmount = toBase(inv.NetAmount)
	inv.BaseCurrencyTaxAmount = toBase(inv.TaxAmount)
	inv.BaseCurrencyTotalAmount = toBase(inv.TotalAmount)
	inv.BaseCurrencyOutstanding = inv.BaseCurrencyTotalAmount
	inv.BaseCurrencyShippingTotal = toBase(inv.ShippingTotalAmount)
	return inv
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

// listSalesInvoices supports search (reference, invoice number or contact name),
// contact_id, status_id, from_date, to_date and updated_or_created_since.
func (s *Server) listSalesInvoices(r *http.Request, call *apiCall) response {
	lp, bad := parseListParams(r)
	if bad != nil {
		return *bad
	}
	q := r.URL.Query()
	contactID, statusID, from, to := q.Get("contact_id"), q.Get("status_id"), q.Get("from_date"), q.Get("to_date")
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := call.business
	var items []*SalesInvoice
	for _, id := range b.invoiceOrder {
		inv := b.invoices[id]
		switch {
		case !lp.changedSince(inv.CreatedAt, inv.UpdatedAt),
			contactID != "" && inv.Contact.ID != contactID,
			statusID != "" && inv.Status.ID != statusID,
			from != "" && inv.Date < from,
			to != "" && inv.Date > to:
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
	switch {
	case inv.Status.ID == "DRAFT":
		delete(b.invoices, inv.ID)
		for i, id := range b.invoiceOrder {
			if id == inv.ID {
				b.invoiceOrder = append(b.invoiceOrder[:i:i], b.invoiceOrder[i+1:]...)
				break
			}
		}
		return response{status: http.StatusNoContent}
	case inv.Status.ID == "VOID":
		return errorResponse(http.StatusUnprocessableEntity, apiErr(CodeRecordInvalid, "The invoice has already been voided.", ""))
	case reason == "":
		return errorResponse(http.StatusUnprocessableEntity, required("void_reason"))
	case tooLong(reason, 200):
		return errorResponse(http.StatusUnprocessableEntity,
			apiErr(CodeRecordInvalid, "Void reason is too long (maximum is 200 characters)", "void_reason"))
	}
	voided := *inv
	voided.Status = invoiceStatuses["VOID"]
	voided.VoidReason = &reason
	voided.OutstandingAmount = money.Zero
	voided.BaseCurrencyOutstanding = money.Zero
	voided.Editable = false
	voided.UpdatedAt = now
	b.invoices[inv.ID] = &voided
	return jsonResponse(http.StatusOK, &voided)
}
