package sagesim

import (
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
	TransactionType           Base         `json:"transaction_type"`
	Contact                   Base         `json:"contact"`
	ContactName               string       `json:"contact_name"`
	ContactReference          string       `json:"contact_reference"`
	Date                      string       `json:"date"`
	Reference                 string       `json:"reference"`
	MainAddress               *Address     `json:"main_address"`
	DeliveryAddress           *Address     `json:"delivery_address"`
	Notes                     string       `json:"notes"`
	TermsAndConditions        string       `json:"terms_and_conditions"`
	ShippingNetAmount         money.Amount `json:"shipping_net_amount"`
	ShippingTaxRate           *Base        `json:"shipping_tax_rate"`
	ShippingTaxAmount         money.Amount `json:"shipping_tax_amount"`
	ShippingTotalAmount       money.Amount `json:"shipping_total_amount"`
	NetAmount                 money.Amount `json:"net_amount"`
	TaxAmount                 money.Amount `json:"tax_amount"`
	TotalAmount               money.Amount `json:"total_amount"`
	TotalPaid                 money.Amount `json:"total_paid"`
	OutstandingAmount         money.Amount `json:"outstanding_amount"`
	Currency                  Base         `json:"currency"`
	ExchangeRate              string       `json:"exchange_rate"`
	InverseExchangeRate       string       `json:"inverse_exchange_rate"`
	BaseCurrencyNetAmount     money.Amount `json:"base_currency_net_amount"`
	BaseCurrencyTaxAmount     money.Amount `json:"base_currency_tax_amount"`
	BaseCurrencyTotalAmount   money.Amount `json:"base_currency_total_amount"`
	BaseCurrencyOutstanding   money.Amount `json:"base_currency_outstanding_amount"`
	BaseCurrencyShippingTotal money.Amount `json:"base_currency_shipping_total_amount"`
	TotalQuantity             money.Amount `json:"total_quantity"`
	TotalDiscountAmount       money.Amount `json:"total_discount_amount"`
	Status                    Base         `json:"status"`
	Sent                      bool         `json:"sent"`
	VoidReason                *string      `json:"void_reason"`
	Editable                  bool         `json:"editable"`
}

func (a *SalesArtefact) sales() *SalesArtefact { return a }

// InvoiceLine is one line of a sales invoice or credit note.
type InvoiceLine struct {
	ID                      string       `json:"id"`
	DisplayedAs             string       `json:"displayed_as"`
	Description             string       `json:"description"`
	Product                 *Base        `json:"product,omitempty"`
	Service                 *Base        `json:"service,omitempty"`
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

// CreditNoteLine is one line of a sales credit note; it has the invoice line's
// shape.
type CreditNoteLine = InvoiceLine

// salesArtefactInput holds the header fields sales invoices and sales credit
// notes share on POST and PUT.
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
	// NetAmount, TaxAmount and TotalAmount are accepted and ignored: Sage keeps
	// the totals it computes from the lines and shipping, even when they differ
	// from what the client sent (README, "Totals").
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
	// NetAmount and TotalAmount are accepted and ignored (computed).
	NetAmount   *money.Amount `json:"net_amount"`
	TotalAmount *money.Amount `json:"total_amount"`
	// The base_currency_* fields are rejected (see quirk_line_base_currency.go).
	BaseCurrencyUnitPrice      *money.Amount `json:"base_currency_unit_price"`
	BaseCurrencyNetAmount      *money.Amount `json:"base_currency_net_amount"`
	BaseCurrencyTaxAmount      *money.Amount `json:"base_currency_tax_amount"`
	BaseCurrencyTotalAmount    *money.Amount `json:"base_currency_total_amount"`
	BaseCurrencyDiscountAmount *money.Amount `json:"base_currency_discount_amount"`
}

// salesParts are the parts of a sales document request: the shared header and
// the kind's own date, number prefix and lines.
type salesParts struct {
	header *salesArtefactInput
	date   *string
	prefix *string
	lines  *[]invoiceLineInput
}

// salesDocument is a pointer to a sales invoice or a sales credit note.
type salesDocument interface {
	document
	sales() *SalesArtefact
}

// salesKind is what sets sales invoices and sales credit notes apart; the
// rules, the totals, payments and voiding are theirs alike.
type salesKind[D salesDocument, In interface{ parts() salesParts }] struct {
	*kind[D]
	noun                      string // "invoice", "credit note"
	debit                     bool   // owed by the customer (invoices), not to it
	dateKey, prefixKey, lines string // the kind's own fields
	prefix                    string // the default number prefix
	transactionType           Base
	newInput                  func() In
	number                    func(D) (prefix, number string)
	build                     func(a SalesArtefact, p salesParts, c *Contact, prefix, number string, lines []InvoiceLine) D
}

// artefactStatuses are the statuses of sales documents and payments on account.
var artefactStatuses = map[string]Base{
	"DRAFT":     {ID: "DRAFT", DisplayedAs: "Draft", Path: "/artefact_statuses/DRAFT"},
	"UNPAID":    {ID: "UNPAID", DisplayedAs: "Unpaid", Path: "/artefact_statuses/UNPAID"},
	"PART_PAID": {ID: "PART_PAID", DisplayedAs: "Part Paid", Path: "/artefact_statuses/PART_PAID"},
	"PAID":      {ID: "PAID", DisplayedAs: "Paid", Path: "/artefact_statuses/PAID"},
	"VOID":      {ID: "VOID", DisplayedAs: "Void", Path: "/artefact_statuses/VOID"},
}

// salesMatch is the list filter of sales documents: search (reference, number
// or contact name), contact_id, status_id, from_date and to_date (inclusive, on
// the document date).
func salesMatch[D salesDocument](q url.Values, lp listParams) func(D) bool {
	f := documentFilter{q.Get("contact_id"), q.Get("status_id"), q.Get("from_date"), q.Get("to_date")}
	return func(d D) bool {
		a := d.sales()
		return f.match(a.Contact.ID, a.Status.ID, a.Date) && (lp.search == "" || containsFold(a.Reference, lp.search) ||
			containsFold(a.DisplayedAs, lp.search) || containsFold(a.ContactName, lp.search))
	}
}

// documentFilter is the list filter on contact_id, status_id, from_date and
// to_date (inclusive, on the document date).
type documentFilter struct{ contactID, statusID, from, to string }

func (f documentFilter) match(contactID, statusID, date string) bool {
	return (f.contactID == "" || contactID == f.contactID) && (f.statusID == "" || statusID == f.statusID) &&
		(f.from == "" || date >= f.from) && (f.to == "" || date <= f.to)
}

// writer is POST /resource and PUT /resource/{id}. A PUT sends the fields it
// changes (the lines as a whole): they replace the stored request's, and the
// merged document is validated and computed again, keeping its id, number,
// creation time and payments. A void document cannot be edited; one with
// payments keeps its contact and currency and cannot fall below what has been
// paid [I].
func (k *salesKind[D, In]) writer(s *Server) *upsert[D, In] {
	return &upsert[D, In]{
		kind: k.kind, newInput: k.newInput, typesFirst: true,
		guard: func(prev D) []APIError {
			if prev.sales().Status.ID == "VOID" {
				return []APIError{apiErr(CodeRecordInvalid, "A void "+k.noun+" cannot be edited.", "")}
			}
			return nil
		},
		save: func(b *business, in In, prev D, update bool, q Quirks, now time.Time) (D, []APIError) {
			errs, v := k.validateLocked(b, in.parts(), q)
			if len(errs) > 0 {
				return prev, errs
			}
			d := k.buildLocked(s, k.store(b), in.parts(), q, v, prev, update, now)
			if update {
				if errs := checkPaidEdit(prev.sales(), d.sales()); len(errs) > 0 {
					return prev, errs
				}
				adjustBalanceLocked(b, prev.sales().Contact.ID, k.contribution(prev.sales()).Neg())
			}
			adjustBalanceLocked(b, d.sales().Contact.ID, k.contribution(d.sales()))
			return d, nil
		},
	}
}

// routes registers POST, GET and PUT /resource[/{id}], and DELETE, which voids.
func (k *salesKind[D, In]) routes(s *Server, mux *http.ServeMux) {
	w := k.writer(s)
	k.kind.routes(s, mux, w.handler(s, false), w.handler(s, true), k.void(s))
}

// contribution is what a document adds to its contact's balance.
func (k *salesKind[D, In]) contribution(a *SalesArtefact) money.Amount {
	return balanceContribution(k.debit, a.Status.ID, a.OutstandingAmount)
}

// checkPaidEdit rejects a PUT that would move a document with payments to
// another contact or currency, or below what has been paid [I].
func checkPaidEdit(prev, next *SalesArtefact) []APIError {
	if prev.TotalPaid.IsZero() {
		return nil
	}
	var errs problems
	errs.when(prev.Contact.ID != next.Contact.ID, apiErr(CodeRecordInvalid, "The contact cannot be changed once payments are allocated.", "contact_id"))
	errs.when(prev.Currency.ID != next.Currency.ID, apiErr(CodeRecordInvalid, "The currency cannot be changed once payments are allocated.", "currency_id"))
	errs.when(next.TotalAmount.Cmp(prev.TotalPaid) < 0, apiErr(CodeRecordInvalid, "The total amount cannot be less than the amount already paid.", "total_amount"))
	return errs
}

// void is DELETE /resource/{id}: it voids the document (200 with it) and
// requires void_reason (≤200), except for a draft, which is deleted outright
// (204). A document cannot be voided twice, nor while payments or allocations
// are on it [I].
func (k *salesKind[D, In]) void(s *Server) apiHandler {
	return k.change(s, func(r *http.Request, b *business, d D, now time.Time) response {
		a, reason := d.sales(), strings.TrimSpace(r.URL.Query().Get("void_reason"))
		var errs problems
		switch {
		case a.Status.ID == "DRAFT":
			k.store(b).remove(a.ID)
			return response{status: http.StatusNoContent}
		case a.Status.ID == "VOID":
			errs = append(errs, apiErr(CodeRecordInvalid, "The "+k.noun+" has already been voided.", ""))
		case reason == "":
			errs = append(errs, required("void_reason"))
		case tooLong(reason, 200):
			errs = append(errs, maxLength(reason, 200, "void_reason")...)
		case !a.TotalPaid.IsZero():
			errs = append(errs, apiErr(CodeRecordInvalid, "The "+k.noun+" has payments or allocations; remove them before voiding.", ""))
		}
		if len(errs) > 0 {
			return errorResponse(http.StatusUnprocessableEntity, errs...)
		}
		adjustBalanceLocked(b, a.Contact.ID, k.contribution(a).Neg())
		a.Status, a.VoidReason, a.Editable, a.UpdatedAt = artefactStatuses["VOID"], &reason, false, now
		a.OutstandingAmount, a.BaseCurrencyOutstanding = money.Zero, money.Zero
		return jsonResponse(http.StatusOK, d)
	})
}

// resolvedLine is a validated line with what its computation needs.
type resolvedLine struct {
	in      *invoiceLineInput
	ledger  LedgerAccount
	taxRate *TaxRate
	product *Base
	service *Base
}

// validArtefact is what building a sales document needs once it validated.
type validArtefact struct {
	contact  *Contact
	currency Base
	rate     money.Amount
	shipRate *TaxRate
	lines    []resolvedLine
}

// validateLocked checks a sales document (POST or merged PUT). It returns the
// error array (umbrella included) or what building the document needs. s.mu
// must be held.
func (k *salesKind[D, In]) validateLocked(b *business, p salesParts, q Quirks) ([]APIError, *validArtefact) {
	var header, lineErrs problems
	in := p.header
	v := &validArtefact{contact: customerLocked(b, in.ContactID, &header)}
	header = append(header, checkDate(in.Date, "date", true)...)
	header = append(header, maxLength(str(in.Reference), 25, "reference")...)
	header = append(header, maxLength(str(in.Notes), 2000, "notes")...)
	header = append(header, maxLength(str(in.TermsAndConditions), 2000, "terms_and_conditions")...)
	if st := str(in.StatusID); st != "" && st != "DRAFT" && st != "UNPAID" {
		header = append(header, apiErr(CodeRecordInvalid, "is not a valid status for a new invoice", "status_id"))
	}
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
	if id := str(in.ShippingTaxRateID); id != "" {
		if t, ok := byID(taxRates, id); ok {
			v.shipRate = &t
			header = append(header, checkZeroRated(q, cross, v.shipRate, "shipping_tax_rate_id")...)
		} else {
			header = append(header, apiErr(CodeRecordInvalid, "Couldn't find tax rate.", "shipping_tax_rate_id"))
		}
	}
	header = append(header, checkDate(p.date, k.dateKey, false)...)
	header = append(header, maxLength(str(p.prefix), 6, k.prefixKey)...)
	header.when(p.lines == nil || len(*p.lines) == 0, required(k.lines))
	if p.lines != nil {
		for i := range *p.lines {
			rl, errs := validateLineLocked(b, &(*p.lines)[i], q, cross)
			lineErrs = append(lineErrs, errs...)
			v.lines = append(v.lines, rl)
		}
		lineErrs = append(lineErrs, checkEUGoodsServices(q, cross, *p.lines)...)
	}
	if errs := withUmbrella(q, header, lineErrs); len(errs) > 0 {
		return errs, nil
	}
	return nil, v
}

// validateLineLocked checks one line. s.mu must be held.
func validateLineLocked(b *business, l *invoiceLineInput, q Quirks, cross bool) (resolvedLine, []APIError) {
	var errs problems
	rl := resolvedLine{in: l}
	if desc := str(l.Description); strings.TrimSpace(desc) == "" {
		errs = append(errs, required("line_items.description"))
	} else {
		errs = append(errs, checkHTMLEntities(q, desc)...)
	}
	ledgerOK := false
	if id := str(l.LedgerAccountID); id == "" {
		errs = append(errs, required("line_items.ledger_account_id"))
	} else if la, ok := byID(b.ledgerAccounts, id); !ok {
		errs = append(errs, apiErr(CodeRecordNotFound, "Couldn't find record.", "line_items.ledger_account_id"))
	} else if !la.VisibleInSales {
		errs = append(errs, apiErr(CodeRecordInvalid, "The ledger account is not valid for sales.", "line_items.ledger_account_id"))
	} else {
		rl.ledger, ledgerOK = la, true
	}
	rl.product = lineItemLocked(&b.products, l.ProductID, "line_items.product_id", &errs)
	rl.service = lineItemLocked(&b.services, l.ServiceID, "line_items.service_id", &errs)
	errs.when(l.UnitPrice == nil, required("line_items.unit_price"))
	if id := str(l.TaxRateID); id != "" {
		if t, ok := byID(taxRates, id); ok {
			rl.taxRate = &t
		} else {
			errs = append(errs, apiErr(CodeRecordInvalid, "Couldn't find tax rate.", "line_items.tax_rate_id"))
		}
	} else if ledgerOK && rl.ledger.TaxRate != nil {
		// Without tax_rate_id the ledger account's default rate applies.
		t, _ := byID(taxRates, rl.ledger.TaxRate.ID)
		rl.taxRate = &t
	}
	errs.when(l.TaxAmount == nil && rl.taxRate != nil && !rl.taxRate.ZeroType, required("line_items.tax_amount"))
	errs = append(errs, checkCurrencyTaxAmount(q, l)...)
	errs = append(errs, checkLineBaseCurrency(q, l)...)
	errs = append(errs, checkZeroRated(q, cross, rl.taxRate, "line_items.tax_rate_id")...)
	if t := str(l.EUGoodsServicesTypeID); t != "" {
		if _, ok := euGoodsServicesTypes[t]; !ok {
			errs = append(errs, apiErr(CodeRecordInvalid, "is not included in the list", "line_items.eu_goods_services_type_id"))
		}
	}
	return rl, errs
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

// toBase converts a document-currency amount with the header rate: base =
// amount × exchange_rate, rounded to 2 dp [I] (Sage's direction is
// unconfirmed).
func toBase(a, rate money.Amount) money.Amount { return a.MulDecimal(rate.Decimal()).Cents() }

// buildLocked computes a sales document from a validated request. prev is the
// document a PUT replaces: its id, number, creation time and payments are
// kept; a POST takes the next number.
func (k *salesKind[D, In]) buildLocked(s *Server, st *store[D], p salesParts, q Quirks, v *validArtefact,
	prev D, update bool, now time.Time) D {
	a, lines := s.computeLocked(p.header, v, q)
	var prefix, number string
	if update {
		prefix, number = k.number(prev)
		a.Record, a.TotalPaid = *prev.record(), prev.sales().TotalPaid
	} else {
		a.Record = s.newRecord(k.resource, now)
		st.seq++
		prefix = valueOr(p.prefix, k.prefix)
		number = fmt.Sprintf("%s%d", prefix, st.seq)
	}
	in, c := p.header, v.contact
	a.DisplayedAs, a.UpdatedAt, a.TransactionType, a.Contact = number, now, k.transactionType, c.ref()
	a.ContactName, a.ContactReference, a.Date, a.Reference = c.Name, c.Reference, str(in.Date), str(in.Reference)
	a.Notes, a.TermsAndConditions, a.Editable = str(in.Notes), str(in.TermsAndConditions), true
	a.OutstandingAmount = a.TotalAmount.Sub(a.TotalPaid)
	a.BaseCurrencyOutstanding = toBase(a.OutstandingAmount, v.rate)
	a.Status = paymentStatus(a.OutstandingAmount, a.TotalAmount)
	if str(in.StatusID) == "DRAFT" && (!update || prev.sales().Status.ID == "DRAFT") {
		a.Status = artefactStatuses["DRAFT"]
	}
	return k.build(a, p, c, prefix, number, lines)
}

// computeLocked computes lines and totals the way Sage does: line net =
// round(quantity × unit price, 2) − discount, line tax as sent (0 for zero,
// exempt and no-tax rates), shipping tax as quirk_shipping_tax.go says, header
// = Σ lines + shipping. Sent header totals are ignored.
func (s *Server) computeLocked(in *salesArtefactInput, v *validArtefact, q Quirks) (SalesArtefact, []InvoiceLine) {
	a := SalesArtefact{Currency: v.currency, ExchangeRate: v.rate.Decimal().String(),
		InverseExchangeRate: one.Decimal().DivRound(v.rate.Decimal(), 10).String()}
	a.MainAddress = v.contact.MainAddress.clone()
	if in.MainAddress != nil {
		a.MainAddress = in.MainAddress.toAddress("", "ACCOUNTS", false)
	}
	a.DeliveryAddress = deliveryAddress(q, in.DeliveryAddress, a.MainAddress, v.contact)
	var lines []InvoiceLine
	for _, rl := range v.lines {
		l := rl.in
		qty, discount := valueOr(l.Quantity, one), valueOr(l.DiscountAmount, money.Zero).Cents()
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
			Product: rl.product, Service: rl.service,
			LedgerAccount: rl.ledger.ref(), Quantity: qty, UnitPrice: *l.UnitPrice,
			UnitPriceIncludesTax: l.UnitPriceIncludesTax, DiscountAmount: discount,
			NetAmount: net, TaxAmount: tax, TotalAmount: net.Add(tax),
			// Sent line base amounts are kept as they are while quirk_line_base_currency.go is off.
			BaseCurrencyNetAmount:   valueOr(l.BaseCurrencyNetAmount, toBase(net, v.rate)).Cents(),
			BaseCurrencyTaxAmount:   valueOr(l.BaseCurrencyTaxAmount, toBase(tax, v.rate)).Cents(),
			BaseCurrencyTotalAmount: valueOr(l.BaseCurrencyTotalAmount, toBase(net.Add(tax), v.rate)).Cents(),
		}
		if rl.taxRate != nil {
			line.TaxRate = new(rl.taxRate.ref())
		}
		if g := str(l.EUGoodsServicesTypeID); g != "" {
			line.EUGoodsServicesType = &Base{ID: g, DisplayedAs: euGoodsServicesTypes[g], Path: "/eu_goods_services_types/" + g}
		}
		lines = append(lines, line)
		a.TotalQuantity, a.TotalDiscountAmount = a.TotalQuantity.Add(qty), a.TotalDiscountAmount.Add(discount)
		a.NetAmount, a.TaxAmount = a.NetAmount.Add(net), a.TaxAmount.Add(tax)
	}
	a.ShippingNetAmount = valueOr(in.ShippingNetAmount, money.Zero).Cents()
	a.ShippingTaxAmount = shippingTax(q, a.ShippingNetAmount, v.shipRate, in.ShippingTaxAmount)
	if v.shipRate != nil {
		a.ShippingTaxRate = new(v.shipRate.ref())
	}
	a.ShippingTotalAmount = a.ShippingNetAmount.Add(a.ShippingTaxAmount)
	a.NetAmount = a.NetAmount.Add(a.ShippingNetAmount)
	a.TaxAmount = a.TaxAmount.Add(a.ShippingTaxAmount)
	a.TotalAmount = a.NetAmount.Add(a.TaxAmount)
	a.BaseCurrencyNetAmount, a.BaseCurrencyTaxAmount = toBase(a.NetAmount, v.rate), toBase(a.TaxAmount, v.rate)
	a.BaseCurrencyTotalAmount = toBase(a.TotalAmount, v.rate)
	a.BaseCurrencyShippingTotal = toBase(a.ShippingTotalAmount, v.rate)
	return a, lines
}

// valueOr is *p when p is sent, else def.
func valueOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// paymentStatus is the status of a posted document from what is left to pay:
// UNPAID while nothing is settled, PART_PAID, then PAID.
func paymentStatus(outstanding, total money.Amount) Base {
	switch {
	case outstanding.Equal(total):
		return artefactStatuses["UNPAID"]
	case outstanding.Sign() == 0:
		return artefactStatuses["PAID"]
	}
	return artefactStatuses["PART_PAID"]
}
