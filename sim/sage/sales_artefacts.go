package sagesim

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

// SalesArtefact is what sales invoices and sales credit notes share; each adds
// its number, its own date and its lines.
type SalesArtefact struct {
	Record
	Artefact
	TransactionType           Base         `json:"transaction_type"`
	MainAddress               *Address     `json:"main_address"`
	DeliveryAddress           *Address     `json:"delivery_address"`
	Notes                     string       `json:"notes"`
	TermsAndConditions        string       `json:"terms_and_conditions"`
	ShippingNetAmount         money.Amount `json:"shipping_net_amount"`
	ShippingTaxRate           *Base        `json:"shipping_tax_rate"`
	ShippingTaxAmount         money.Amount `json:"shipping_tax_amount"`
	ShippingTotalAmount       money.Amount `json:"shipping_total_amount"`
	TotalPaid                 money.Amount `json:"total_paid"`
	InverseExchangeRate       string       `json:"inverse_exchange_rate"`
	BaseCurrencyShippingTotal money.Amount `json:"base_currency_shipping_total_amount"`
	TotalQuantity             money.Amount `json:"total_quantity"`
	TotalDiscountAmount       money.Amount `json:"total_discount_amount"`
	Sent                      bool         `json:"sent"`
	VoidReason                *string      `json:"void_reason"`
	Editable                  bool         `json:"editable"`
}

func (a *SalesArtefact) sales() *SalesArtefact { return a }

// InvoiceLine is one line of a sales invoice or credit note.
type InvoiceLine struct {
	ID                   string       `json:"id"`
	DisplayedAs          string       `json:"displayed_as"`
	Description          string       `json:"description"`
	Product              *Base        `json:"product,omitempty"`
	Service              *Base        `json:"service,omitempty"`
	LedgerAccount        Base         `json:"ledger_account"`
	Quantity             money.Amount `json:"quantity"`
	UnitPrice            money.Amount `json:"unit_price"`
	UnitPriceIncludesTax bool         `json:"unit_price_includes_tax"`
	DiscountAmount       money.Amount `json:"discount_amount"`
	TaxRate              *Base        `json:"tax_rate"`
	EUGoodsServicesType  *Base        `json:"eu_goods_services_type"`
	Amounts
}

// CreditNoteLine is a sales credit note line, shaped as an invoice line.
type CreditNoteLine = InvoiceLine

// salesArtefactInput is the header both kinds of sales document send.
type salesArtefactInput struct {
	ContactID          *string       `json:"contact_id"`
	Date               *string       `json:"date"`
	Reference          *string       `json:"reference"`
	Notes              *string       `json:"notes"`
	TermsAndConditions *string       `json:"terms_and_conditions"`
	StatusID           *string       `json:"status_id"`
	CurrencyID         *string       `json:"currency_id"`
	ExchangeRate       *money.Amount `json:"exchange_rate"`
	ShippingNetAmount  *money.Amount `json:"shipping_net_amount"`
	ShippingTaxRateID  *string       `json:"shipping_tax_rate_id"`
	ShippingTaxAmount  *money.Amount `json:"shipping_tax_amount"`
	// Sent totals are accepted and ignored: Sage keeps those it computes from
	// the lines and shipping, even when they differ.
	NetAmount       *money.Amount `json:"net_amount"`
	TaxAmount       *money.Amount `json:"tax_amount"`
	TotalAmount     *money.Amount `json:"total_amount"`
	MainAddress     *addressInput `json:"main_address"`
	DeliveryAddress *addressInput `json:"delivery_address"`
}

// invoiceLineInput is one invoice_lines or credit_note_lines entry.
type invoiceLineInput struct {
	Description           *string       `json:"description"`
	LedgerAccountID       *string       `json:"ledger_account_id"`
	ProductID             *string       `json:"product_id"`
	ServiceID             *string       `json:"service_id"`
	UnitPrice             *money.Amount `json:"unit_price"`
	Quantity              *money.Amount `json:"quantity"`
	TaxRateID             *string       `json:"tax_rate_id"`
	TaxAmount             *money.Amount `json:"tax_amount"`
	CurrencyTaxAmount     *money.Amount `json:"currency_tax_amount"`
	UnitPriceIncludesTax  bool          `json:"unit_price_includes_tax"`
	DiscountAmount        *money.Amount `json:"discount_amount"`
	EUGoodsServicesTypeID *string       `json:"eu_goods_services_type_id"`
	// NetAmount and TotalAmount are accepted and ignored (computed); the
	// base_currency_* fields are rejected (see quirk_line_base_currency.go).
	NetAmount                  *money.Amount `json:"net_amount"`
	TotalAmount                *money.Amount `json:"total_amount"`
	BaseCurrencyUnitPrice      *money.Amount `json:"base_currency_unit_price"`
	BaseCurrencyNetAmount      *money.Amount `json:"base_currency_net_amount"`
	BaseCurrencyTaxAmount      *money.Amount `json:"base_currency_tax_amount"`
	BaseCurrencyTotalAmount    *money.Amount `json:"base_currency_total_amount"`
	BaseCurrencyDiscountAmount *money.Amount `json:"base_currency_discount_amount"`
}

// salesParts are a request's header and its kind's date, number prefix and lines.
type salesParts struct {
	header *salesArtefactInput
	date   *string
	prefix *string
	lines  *[]invoiceLineInput
}

type salesDocument interface {
	document
	sales() *SalesArtefact
}

// salesKind is what sets sales invoices and credit notes apart.
type salesKind[D salesDocument, In interface{ parts() salesParts }] struct {
	*kind[D]
	noun                      string // "invoice", "credit note"
	debit                     bool   // owed by the customer (invoices), not to it
	dateKey, prefixKey, lines string // the kind's own fields
	prefix, transactionType   string // the default number prefix; the type id
	newInput                  func() In
	number                    func(D) (prefix, number string)
	build                     func(a SalesArtefact, p salesParts, c *Contact, prefix, number string, lines []InvoiceLine) D
}

// salesMatch filters lists on search (reference, number or contact name) and
// as documentFilter does.
func salesMatch[D salesDocument](q url.Values, lp listParams) func(D) bool {
	f := documentFilter{q.Get("contact_id"), q.Get("status_id"), q.Get("from_date"), q.Get("to_date")}
	return func(d D) bool {
		a := d.sales()
		return f.match(a.Contact.ID, a.Status.ID, a.Date) && (lp.search == "" || containsFold(a.Reference, lp.search) ||
			containsFold(a.DisplayedAs, lp.search) || containsFold(a.ContactName, lp.search))
	}
}

// documentFilter filters lists on contact_id, status_id, from_date and to_date
// (inclusive, on the document date).
type documentFilter struct{ contactID, statusID, from, to string }

func (f documentFilter) match(contactID, statusID, date string) bool {
	return (f.contactID == "" || contactID == f.contactID) && (f.statusID == "" || statusID == f.statusID) &&
		(f.from == "" || date >= f.from) && (f.to == "" || date <= f.to)
}

// routes registers the kind's routes; DELETE voids. A PUT sends the fields it
// changes (lines as a whole), which replace the stored request's; the merged
// document is validated and computed again, keeping its id, number, creation
// time and payments. A void document cannot be edited; one with payments keeps
// its contact and currency and cannot fall below what has been paid [I].
func (k *salesKind[D, In]) routes(s *Server, mux *http.ServeMux) {
	w := &upsert[D, In]{
		kind: k.kind, newInput: k.newInput, typesFirst: true,
		guard: func(prev D) []APIError {
			if prev.sales().Status.ID == "VOID" {
				return []APIError{apiErr(CodeRecordInvalid, "A void "+k.noun+" cannot be edited.", "")}
			}
			return nil
		},
		save: func(b *business, in In, prev D, update bool, q Quirks, now time.Time) (D, []APIError) {
			p := in.parts()
			v, errs := k.validateLocked(b, p, q)
			if len(errs) > 0 {
				return prev, errs
			}
			for i := range v.lines {
				v.lines[i].ID = s.newID()
			}
			a := s.compute(p.header, v, q)
			var prefix, number string
			if update {
				prefix, number = k.number(prev)
				a.Record, a.TotalPaid = *prev.record(), prev.sales().TotalPaid
			} else {
				a.Record = s.newRecord(k.resource, now)
				k.store(b).seq++
				prefix = valueOr(p.prefix, k.prefix)
				number = fmt.Sprintf("%s%d", prefix, k.store(b).seq)
			}
			h, c := p.header, v.contact
			a.DisplayedAs, a.UpdatedAt, a.TransactionType, a.Contact = number, now, transactionType(k.transactionType), c.ref()
			a.ContactName, a.ContactReference, a.Date, a.Reference = c.Name, c.Reference, str(h.Date), str(h.Reference)
			a.Notes, a.TermsAndConditions, a.Editable = str(h.Notes), str(h.TermsAndConditions), true
			a.OutstandingAmount, a.rate = a.TotalAmount, v.rate
			a.settle(a.TotalPaid)
			if str(h.StatusID) == "DRAFT" && (!update || prev.sales().Status.ID == "DRAFT") {
				a.Status = status("DRAFT")
			}
			d := k.build(a, p, c, prefix, number, v.lines)
			if update {
				var errs problems
				if was := prev.sales(); !was.TotalPaid.IsZero() {
					errs.when(was.Contact.ID != c.ID, apiErr(CodeRecordInvalid, "The contact cannot be changed once payments are allocated.", "contact_id"))
					errs.when(was.Currency.ID != a.Currency.ID, apiErr(CodeRecordInvalid, "The currency cannot be changed once payments are allocated.", "currency_id"))
					errs.when(a.TotalAmount.Cmp(was.TotalPaid) < 0, apiErr(CodeRecordInvalid, "The total amount cannot be less than the amount already paid.", "total_amount"))
				}
				if len(errs) > 0 {
					return prev, errs
				}
				adjustBalanceLocked(b, prev.sales().Contact.ID, prev.sales().owed(k.debit).Neg())
			}
			adjustBalanceLocked(b, c.ID, d.sales().owed(k.debit))
			return d, nil
		},
	}
	k.kind.routes(s, mux, w.handler(s, false), w.handler(s, true), k.void(s))
}

// owed is what a document adds to its contact's balance: an invoice (debit)
// its outstanding amount, a credit note minus it, a draft or void one nothing.
func (a *SalesArtefact) owed(debit bool) money.Amount {
	switch {
	case a.Status.ID == "DRAFT" || a.Status.ID == "VOID":
		return money.Zero
	case debit:
		return a.OutstandingAmount
	}
	return a.OutstandingAmount.Neg()
}

// void is DELETE /resource/{id}: it voids the document (200 with it) and
// requires void_reason (≤200), except for a draft, which is deleted outright
// (204). A document cannot be voided twice, nor while payments or allocations
// are on it [I].
func (k *salesKind[D, In]) void(s *Server) apiHandler {
	return k.change(s, true, func(r *http.Request, b *business, d D, now time.Time) *response {
		a, reason := d.sales(), strings.TrimSpace(r.URL.Query().Get("void_reason"))
		switch {
		case a.Status.ID == "DRAFT":
			k.store(b).remove(a.ID)
			return &response{status: http.StatusNoContent}
		case a.Status.ID == "VOID":
			return unprocessable(apiErr(CodeRecordInvalid, "The "+k.noun+" has already been voided.", ""))
		case reason == "":
			return unprocessable(required("void_reason"))
		case tooLong(reason, 200):
			return unprocessable(maxLength(reason, 200, "void_reason")...)
		case !a.TotalPaid.IsZero():
			return unprocessable(apiErr(CodeRecordInvalid, "The "+k.noun+" has payments or allocations; remove them before voiding.", ""))
		}
		adjustBalanceLocked(b, a.Contact.ID, a.owed(k.debit).Neg())
		a.Status, a.VoidReason, a.Editable, a.UpdatedAt = status("VOID"), &reason, false, now
		a.OutstandingAmount, a.BaseCurrencyOutstandingAmount = money.Zero, money.Zero
		return jsonResponse(http.StatusOK, d)
	})
}

// validArtefact is what building a sales document needs once it validated.
type validArtefact struct {
	contact  *Contact
	currency Base
	rate     money.Amount
	shipRate *TaxRate
	lines    []InvoiceLine // computed, without ids
}

// validateLocked checks a sales document (POST or merged PUT). It returns what
// building the document needs or the error array (umbrella included).
func (k *salesKind[D, In]) validateLocked(b *business, p salesParts, q Quirks) (*validArtefact, []APIError) {
	var header, lineErrs problems
	in := p.header
	v := &validArtefact{contact: customerLocked(b, in.ContactID, &header)}
	header = append(header, checkDate(in.Date, "date", true)...)
	header = append(header, maxLength(str(in.Reference), 25, "reference")...)
	header = append(header, maxLength(str(in.Notes), 2000, "notes")...)
	header = append(header, maxLength(str(in.TermsAndConditions), 2000, "terms_and_conditions")...)
	st := str(in.StatusID)
	header.when(st != "" && st != "DRAFT" && st != "UNPAID", apiErr(CodeRecordInvalid, "is not a valid status for a new invoice", "status_id"))
	// Without currency_id a document is in its contact's currency.
	def := currencies[0]
	if v.contact != nil {
		def = v.contact.Currency
	}
	var currencyOK bool
	if v.currency, currencyOK = currencyOf(in.CurrencyID, def, &header); currencyOK {
		header = append(header, checkDocumentCurrency(q, v.contact, v.currency.ID)...)
	}
	v.rate = exchangeRate(in.ExchangeRate, v.currency, &header)
	cross := crossBorder(b, v.contact)
	v.shipRate = taxRateOf(&header, in.ShippingTaxRateID, "shipping_tax_rate_id")
	header = append(header, checkZeroRated(q, cross, v.shipRate, "shipping_tax_rate_id")...)
	header = append(header, checkDate(p.date, k.dateKey, false)...)
	header = append(header, maxLength(str(p.prefix), 6, k.prefixKey)...)
	lines := valueOr(p.lines, nil)
	header.when(len(lines) == 0, required(k.lines))
	for i := range lines {
		line, errs := lineLocked(b, &lines[i], q, cross, v.rate)
		lineErrs = append(lineErrs, errs...)
		v.lines = append(v.lines, line)
	}
	lineErrs = append(lineErrs, checkEUGoodsServices(q, cross, lines)...)
	if errs := withUmbrella(q, header, lineErrs); len(errs) > 0 {
		return nil, errs
	}
	return v, nil
}

// lineLocked checks one line and computes a valid one the way Sage does: net =
// round(quantity × unit price, 2) − discount (less the tax when the unit price
// includes it), tax as sent (0 for zero, exempt and no-tax rates). Without
// tax_rate_id a line takes its ledger account's default rate.
func lineLocked(b *business, l *invoiceLineInput, q Quirks, cross bool, rate money.Amount) (InvoiceLine, []APIError) {
	var errs problems
	if desc := str(l.Description); strings.TrimSpace(desc) == "" {
		errs = append(errs, required("line_items.description"))
	} else {
		errs = append(errs, checkHTMLEntities(q, desc)...)
	}
	la := ledgerAccountLocked(&errs, b, l.LedgerAccountID, "line_items.ledger_account_id", true, true)
	line := InvoiceLine{DisplayedAs: str(l.Description), Description: str(l.Description), UnitPriceIncludesTax: l.UnitPriceIncludesTax,
		Product: lineItemLocked(&b.products, l.ProductID, "line_items.product_id", &errs),
		Service: lineItemLocked(&b.services, l.ServiceID, "line_items.service_id", &errs)}
	errs.when(l.UnitPrice == nil, required("line_items.unit_price"))
	taxRate := taxRateOf(&errs, l.TaxRateID, "line_items.tax_rate_id")
	if la != nil && str(l.TaxRateID) == "" && la.TaxRate != nil {
		t, _ := byID(taxRates, la.TaxRate.ID)
		taxRate = &t
	}
	zero := taxRate != nil && taxRate.ZeroType
	errs.when(l.TaxAmount == nil && taxRate != nil && !zero, required("line_items.tax_amount"))
	errs = append(errs, checkCurrencyTaxAmount(q, l)...)
	errs = append(errs, checkLineBaseCurrency(q, l)...)
	errs = append(errs, checkZeroRated(q, cross, taxRate, "line_items.tax_rate_id")...)
	eu := str(l.EUGoodsServicesTypeID)
	errs.when(eu != "" && euGoodsServicesTypes[eu] == "", apiErr(CodeRecordInvalid, "is not included in the list", "line_items.eu_goods_services_type_id"))
	if len(errs) > 0 {
		return line, errs
	}
	line.LedgerAccount, line.TaxRate, line.UnitPrice = la.ref(), refOf(taxRate), *l.UnitPrice
	if eu != "" {
		line.EUGoodsServicesType = new(named("eu_goods_services_types", euGoodsServicesTypes, eu))
	}
	line.Quantity, line.DiscountAmount = valueOr(l.Quantity, one), valueOr(l.DiscountAmount, money.Zero).Cents()
	net, tax := line.Quantity.Mul(line.UnitPrice).Cents().Sub(line.DiscountAmount), money.Zero
	if l.TaxAmount != nil && !zero {
		tax = l.TaxAmount.Cents()
	}
	if l.UnitPriceIncludesTax {
		net = net.Sub(tax)
	}
	line.Amounts = amounts(net, tax, rate)
	// Sent line base amounts are kept while quirk_line_base_currency.go is off.
	for dst, sent := range map[*money.Amount]*money.Amount{&line.BaseCurrencyNetAmount: l.BaseCurrencyNetAmount,
		&line.BaseCurrencyTaxAmount: l.BaseCurrencyTaxAmount, &line.BaseCurrencyTotalAmount: l.BaseCurrencyTotalAmount} {
		if sent != nil {
			*dst = sent.Cents()
		}
	}
	return line, nil
}

// lineItemLocked resolves a line's product_id or service_id, if sent.
func lineItemLocked[D document](st *store[D], id *string, source string, errs *problems) *Base {
	if str(id) == "" {
		return nil
	}
	if d, ok := st.docs[*id]; ok {
		return new(d.record().ref())
	}
	*errs = append(*errs, apiErr(CodeRecordNotFound, "Couldn't find record.", source))
	return nil
}

// compute totals a document the way Sage does: header = Σ lines + shipping,
// with shipping tax as quirk_shipping_tax.go says.
func (s *Server) compute(in *salesArtefactInput, v *validArtefact, q Quirks) SalesArtefact {
	a := SalesArtefact{Artefact: Artefact{Currency: v.currency, ExchangeRate: v.rate.Decimal().String()},
		InverseExchangeRate: one.Decimal().DivRound(v.rate.Decimal(), 10).String(), MainAddress: v.contact.MainAddress.clone()}
	if in.MainAddress != nil {
		a.MainAddress = in.MainAddress.toAddress("", "ACCOUNTS", false)
	}
	a.DeliveryAddress = deliveryAddress(q, in.DeliveryAddress, a.MainAddress, v.contact)
	a.ShippingNetAmount = valueOr(in.ShippingNetAmount, money.Zero).Cents()
	a.ShippingTaxAmount = shippingTax(q, a.ShippingNetAmount, v.shipRate, in.ShippingTaxAmount)
	a.ShippingTaxRate, a.ShippingTotalAmount = refOf(v.shipRate), a.ShippingNetAmount.Add(a.ShippingTaxAmount)
	net, tax := a.ShippingNetAmount, a.ShippingTaxAmount
	for _, l := range v.lines {
		a.TotalQuantity, a.TotalDiscountAmount = a.TotalQuantity.Add(l.Quantity), a.TotalDiscountAmount.Add(l.DiscountAmount)
		net, tax = net.Add(l.NetAmount), tax.Add(l.TaxAmount)
	}
	a.Amounts = amounts(net, tax, v.rate)
	a.BaseCurrencyShippingTotal = toBase(a.ShippingTotalAmount, v.rate)
	return a
}

// SalesInvoice is a Sage sales invoice as the API returns it.
type SalesInvoice struct {
	SalesArtefact
	InvoiceNumberPrefix string        `json:"invoice_number_prefix"`
	InvoiceNumber       string        `json:"invoice_number"`
	DueDate             string        `json:"due_date"`
	InvoiceLines        []InvoiceLine `json:"invoice_lines"`
}

type salesInvoiceInput struct {
	salesArtefactInput
	DueDate             *string             `json:"due_date"`
	InvoiceNumberPrefix *string             `json:"invoice_number_prefix"`
	InvoiceLines        *[]invoiceLineInput `json:"invoice_lines"`
}

func (in *salesInvoiceInput) parts() salesParts {
	return salesParts{&in.salesArtefactInput, in.DueDate, in.InvoiceNumberPrefix, in.InvoiceLines}
}

// Invoices returns a business's sales invoices, as Contacts does contacts.
func (s *Server) Invoices(businessID string) []SalesInvoice {
	return snapshot(s, businessID, invoiceKind.kind)
}

// invoiceKind: a sales invoice is owed by the customer; without due_date it is
// due after the contact's credit days (30 when unset).
var invoiceKind = &salesKind[*SalesInvoice, *salesInvoiceInput]{
	kind: &kind[*SalesInvoice]{
		root: "sales_invoice", resource: "sales_invoices",
		store:     func(b *business) *store[*SalesInvoice] { return &b.invoices },
		match:     salesMatch[*SalesInvoice],
		reference: func(inv *SalesInvoice) string { return inv.Reference },
	},
	noun: "invoice", debit: true, dateKey: "due_date", prefixKey: "invoice_number_prefix", lines: "invoice_lines", prefix: "SI-",
	transactionType: "SALES_INVOICE",
	newInput:        func() *salesInvoiceInput { return new(salesInvoiceInput) },
	number:          func(inv *SalesInvoice) (string, string) { return inv.InvoiceNumberPrefix, inv.InvoiceNumber },
	build: func(a SalesArtefact, p salesParts, c *Contact, prefix, number string, lines []InvoiceLine) *SalesInvoice {
		date, _ := time.Parse(time.DateOnly, a.Date)
		due := date.AddDate(0, 0, cmp.Or(max(c.CreditDays, 0), 30)).Format(time.DateOnly)
		return &SalesInvoice{SalesArtefact: a, InvoiceNumberPrefix: prefix, InvoiceNumber: number,
			DueDate: cmp.Or(str(p.date), due), InvoiceLines: lines}
	},
}

// SalesCreditNote is a Sage sales credit note as the API returns it: an
// invoice's shape with its own number, original_invoice_date and lines. Its
// outstanding_amount is what is still owed to the customer.
type SalesCreditNote struct {
	SalesArtefact
	CreditNoteNumberPrefix string           `json:"credit_note_number_prefix"`
	CreditNoteNumber       string           `json:"credit_note_number"`
	OriginalInvoiceDate    *string          `json:"original_invoice_date"`
	CreditNoteLines        []CreditNoteLine `json:"credit_note_lines"`
}

type salesCreditNoteInput struct {
	salesArtefactInput
	OriginalInvoiceDate    *string             `json:"original_invoice_date"`
	CreditNoteNumberPrefix *string             `json:"credit_note_number_prefix"`
	CreditNoteLines        *[]invoiceLineInput `json:"credit_note_lines"`
}

func (in *salesCreditNoteInput) parts() salesParts {
	return salesParts{&in.salesArtefactInput, in.OriginalInvoiceDate, in.CreditNoteNumberPrefix, in.CreditNoteLines}
}

// CreditNotes returns a business's sales credit notes, as Contacts does.
func (s *Server) CreditNotes(businessID string) []SalesCreditNote {
	return snapshot(s, businessID, creditNoteKind.kind)
}

// creditNoteKind: a sales credit note is owed to the customer.
var creditNoteKind = &salesKind[*SalesCreditNote, *salesCreditNoteInput]{
	kind: &kind[*SalesCreditNote]{
		root: "sales_credit_note", resource: "sales_credit_notes",
		store:     func(b *business) *store[*SalesCreditNote] { return &b.creditNotes },
		match:     salesMatch[*SalesCreditNote],
		reference: func(cn *SalesCreditNote) string { return cn.Reference },
	},
	noun: "credit note", dateKey: "original_invoice_date", prefixKey: "credit_note_number_prefix", lines: "credit_note_lines",
	prefix:          "SCN-",
	transactionType: "SALES_CREDIT_NOTE",
	newInput:        func() *salesCreditNoteInput { return new(salesCreditNoteInput) },
	number:          func(cn *SalesCreditNote) (string, string) { return cn.CreditNoteNumberPrefix, cn.CreditNoteNumber },
	build: func(a SalesArtefact, p salesParts, _ *Contact, prefix, number string, lines []InvoiceLine) *SalesCreditNote {
		return &SalesCreditNote{SalesArtefact: a, CreditNoteNumberPrefix: prefix, CreditNoteNumber: number,
			OriginalInvoiceDate: p.date, CreditNoteLines: lines}
	},
}
