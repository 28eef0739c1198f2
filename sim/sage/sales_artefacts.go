package sagesim

import (
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
)

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
	// The base_currency_* fields are rejected under quirk §27.
	BaseCurrencyUnitPrice      *money.Amount `json:"base_currency_unit_price"`
	BaseCurrencyNetAmount      *money.Amount `json:"base_currency_net_amount"`
	BaseCurrencyTaxAmount      *money.Amount `json:"base_currency_tax_amount"`
	BaseCurrencyTotalAmount    *money.Amount `json:"base_currency_total_amount"`
	BaseCurrencyDiscountAmount *money.Amount `json:"base_currency_discount_amount"`
}

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

// artefactStatuses are the statuses of sales documents and payments on account.
var artefactStatuses = map[string]Base{
	"DRAFT":     {ID: "DRAFT", DisplayedAs: "Draft", Path: "/artefact_statuses/DRAFT"},
	"UNPAID":    {ID: "UNPAID", DisplayedAs: "Unpaid", Path: "/artefact_statuses/UNPAID"},
	"PART_PAID": {ID: "PART_PAID", DisplayedAs: "Part Paid", Path: "/artefact_statuses/PART_PAID"},
	"PAID":      {ID: "PAID", DisplayedAs: "Paid", Path: "/artefact_statuses/PAID"},
	"VOID":      {ID: "VOID", DisplayedAs: "Void", Path: "/artefact_statuses/VOID"},
}

// invoiceStatuses is kept for the invoice code that predates credit notes.
var invoiceStatuses = artefactStatuses

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

var one = money.MustParse("1")

// validateSalesArtefactLocked checks the header and lines shared by invoices and
// credit notes. linesKey names the lines array for a missing-lines error; extra
// are the document's own header errors. It returns the error array (umbrella
// included) or what building the document needs. s.mu must be held.
func validateSalesArtefactLocked(b *business, in *salesArtefactInput, lines *[]invoiceLineInput, linesKey string,
	extra []APIError, q Quirks) ([]APIError, *validArtefact) {
	var header, lineErrs []APIError
	v := &validArtefact{currency: currencies[0], rate: one}
	if id := str(in.ContactID); id == "" {
		header = append(header, required("contact_id"))
	} else if c, ok := b.contacts[id]; !ok || c.DeletedAt != nil || !c.IsCustomer() {
		// Sage answers a vendor (or unknown) contact on a sales document with the
		// type's name and no $source (GH29).
		header = append(header, apiErr(CodeRecordInvalid, "Couldn't find Customer.", ""))
	} else {
		v.contact = c
	}
	header = append(header, checkDate(in.Date, "date", true)...)
	if tooLong(str(in.Reference), 25) {
		header = append(header, apiErr(CodeRecordInvalid, "Reference is too long (maximum is 25 characters)", "reference"))
	}
	if tooLong(str(in.Notes), 2000) {
		header = append(header, apiErr(CodeRecordInvalid, "Notes is too long (maximum is 2000 characters)", "notes"))
	}
	if tooLong(str(in.TermsAndConditions), 2000) {
		header = append(header, apiErr(CodeRecordInvalid, "Terms and conditions is too long (maximum is 2000 characters)", "terms_and_conditions"))
	}
	if st := str(in.StatusID); st != "" && st != "DRAFT" && st != "UNPAID" {
		header = append(header, apiErr(CodeRecordInvalid, "is not a valid status for a new invoice", "status_id"))
	}
	currencyOK := true
	if cur := str(in.CurrencyID); cur != "" {
		if c, ok := currencyByID(cur); ok {
			v.currency = c
		} else {
			currencyOK = false
			header = append(header, apiErr(CodeRecordInvalid, "Couldn't find currency.", "currency_id"))
		}
	} else if v.contact != nil {
		// Without currency_id a document is in its contact's currency.
		v.currency = v.contact.Currency
	}
	if currencyOK {
		header = append(header, checkDocumentCurrency(q, v.contact, v.currency.ID)...)
	}
	if in.ExchangeRate != nil && in.ExchangeRate.Sign() <= 0 {
		header = append(header, apiErr(CodeRecordInvalid, "must be greater than 0", "exchange_rate"))
	} else if in.ExchangeRate != nil && v.currency.ID != currencies[0].ID {
		v.rate = *in.ExchangeRate
	}
	cross := crossBorder(b, v.contact)
	if id := str(in.ShippingTaxRateID); id != "" {
		if t, ok := taxRateByID(id); ok {
			v.shipRate = &t
			header = append(header, checkZeroRated(q, cross, v.shipRate, "shipping_tax_rate_id")...)
		} else {
			header = append(header, apiErr(CodeRecordInvalid, "Couldn't find tax rate.", "shipping_tax_rate_id"))
		}
	}
	header = append(header, extra...)
	if lines == nil || len(*lines) == 0 {
		header = append(header, required(linesKey))
	}
	if lines != nil {
		for i := range *lines {
			l := &(*lines)[i]
			rl, errs := validateLineLocked(b, l, q, cross)
			lineErrs = append(lineErrs, errs...)
			v.lines = append(v.lines, rl)
		}
		lineErrs = append(lineErrs, checkEUGoodsServices(q, cross, *lines)...)
	}
	if errs := withUmbrella(q, header, lineErrs); len(errs) > 0 {
		return errs, nil
	}
	return nil, v
}

// validateLineLocked checks one line. s.mu must be held.
func validateLineLocked(b *business, l *invoiceLineInput, q Quirks, cross bool) (resolvedLine, []APIError) {
	var errs []APIError
	rl := resolvedLine{in: l}
	if desc := str(l.Description); strings.TrimSpace(desc) == "" {
		errs = append(errs, required("line_items.description"))
	} else {
		errs = append(errs, checkHTMLEntities(q, desc)...)
	}
	ledgerOK := false
	if id := str(l.LedgerAccountID); id == "" {
		errs = append(errs, required("line_items.ledger_account_id"))
	} else if la, ok := b.ledgerAccount(id); !ok {
		errs = append(errs, apiErr(CodeRecordNotFound, "Couldn't find record.", "line_items.ledger_account_id"))
	} else if !la.VisibleInSales {
		errs = append(errs, apiErr(CodeRecordInvalid, "The ledger account is not valid for sales.", "line_items.ledger_account_id"))
	} else {
		rl.ledger, ledgerOK = la, true
	}
	if id := str(l.ProductID); id != "" {
		if p, ok := b.products[id]; ok {
			rl.product = &Base{ID: p.ID, DisplayedAs: p.DisplayedAs, Path: p.Path}
		} else {
			errs = append(errs, apiErr(CodeRecordNotFound, "Couldn't find record.", "line_items.product_id"))
		}
	}
	if id := str(l.ServiceID); id != "" {
		if sv, ok := b.services[id]; ok {
			rl.service = &Base{ID: sv.ID, DisplayedAs: sv.DisplayedAs, Path: sv.Path}
		} else {
			errs = append(errs, apiErr(CodeRecordNotFound, "Couldn't find record.", "line_items.service_id"))
		}
	}
	if l.UnitPrice == nil {
		errs = append(errs, required("line_items.unit_price"))
	}
	if id := str(l.TaxRateID); id != "" {
		if t, ok := taxRateByID(id); ok {
			rl.taxRate = &t
		} else {
			errs = append(errs, apiErr(CodeRecordInvalid, "Couldn't find tax rate.", "line_items.tax_rate_id"))
		}
	} else if ledgerOK && rl.ledger.TaxRate != nil {
		// Without tax_rate_id the ledger account's default rate applies.
		t, _ := taxRateByID(rl.ledger.TaxRate.ID)
		rl.taxRate = &t
	}
	if l.TaxAmount == nil && rl.taxRate != nil && !rl.taxRate.ZeroType {
		errs = append(errs, required("line_items.tax_amount"))
	}
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

// checkDate validates a YYYY-MM-DD field.
func checkDate(p *string, source string, req bool) []APIError {
	d := str(p)
	if d == "" {
		if req {
			return []APIError{required(source)}
		}
		return nil
	}
	if _, err := time.Parse(time.DateOnly, d); err != nil {
		return []APIError{apiErr(CodeRecordInvalid, "is not a valid date (YYYY-MM-DD)", source)}
	}
	return nil
}

// artefactTotals are a sales document's computed lines and amounts.
type artefactTotals struct {
	lines                        []InvoiceLine
	quantity, discount           money.Amount
	shipNet, shipTax, shipTotal  money.Amount
	shipRate                     *Base
	net, tax, total              money.Amount
	currency                     Base
	rate                         money.Amount
	exchangeRate, inverseRate    string
	baseNet, baseTax, baseTotal  money.Amount
	baseShipTotal                money.Amount
	mainAddress, deliveryAddress *Address
}

// toBase converts a document-currency amount with the header rate: base =
// amount × exchange_rate, rounded to 2 dp [I] (Sage's direction is
// unconfirmed).
func toBase(a, rate money.Amount) money.Amount { return a.MulDecimal(rate.Decimal()).Cents() }

// computeArtefactLocked computes lines and totals the way Sage does: line net =
// round(quantity × unit price, 2) − discount, line tax as sent (inferred 0 for
// zero, exempt and no-tax rates), shipping tax per quirk §32, header = Σ lines +
// shipping. Sent header totals are ignored.
func (s *Server) computeArtefactLocked(in *salesArtefactInput, v *validArtefact, q Quirks) artefactTotals {
	t := artefactTotals{currency: v.currency, rate: v.rate}
	t.exchangeRate = v.rate.Decimal().String()
	t.inverseRate = one.Decimal().DivRound(v.rate.Decimal(), 10).String()
	t.mainAddress = v.contact.MainAddress.clone()
	if in.MainAddress != nil {
		t.mainAddress = in.MainAddress.toAddress("", "ACCOUNTS", false)
	}
	t.deliveryAddress = deliveryAddress(q, in.DeliveryAddress, t.mainAddress, v.contact)

	for _, rl := range v.lines {
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
			Product: rl.product, Service: rl.service,
			LedgerAccount: rl.ledger.base(), Quantity: qty, UnitPrice: *l.UnitPrice,
			UnitPriceIncludesTax: l.UnitPriceIncludesTax, DiscountAmount: discount,
			NetAmount: net, TaxAmount: tax, TotalAmount: net.Add(tax),
			BaseCurrencyNetAmount: toBase(net, v.rate), BaseCurrencyTaxAmount: toBase(tax, v.rate),
			BaseCurrencyTotalAmount: toBase(net.Add(tax), v.rate),
		}
		// With §27 off, sent line base amounts are kept as they are.
		if l.BaseCurrencyNetAmount != nil {
			line.BaseCurrencyNetAmount = l.BaseCurrencyNetAmount.Cents()
		}
		if l.BaseCurrencyTaxAmount != nil {
			line.BaseCurrencyTaxAmount = l.BaseCurrencyTaxAmount.Cents()
		}
		if l.BaseCurrencyTotalAmount != nil {
			line.BaseCurrencyTotalAmount = l.BaseCurrencyTotalAmount.Cents()
		}
		if rl.taxRate != nil {
			line.TaxRate = rl.taxRate.base()
		}
		if g := str(l.EUGoodsServicesTypeID); g != "" {
			line.EUGoodsServicesType = &Base{ID: g, DisplayedAs: euGoodsServicesTypes[g], Path: "/eu_goods_services_types/" + g}
		}
		t.lines = append(t.lines, line)
		t.quantity = t.quantity.Add(qty)
		t.discount = t.discount.Add(discount)
		t.net, t.tax = t.net.Add(net), t.tax.Add(tax)
	}

	if in.ShippingNetAmount != nil {
		t.shipNet = in.ShippingNetAmount.Cents()
	}
	t.shipTax = shippingTax(q, t.shipNet, v.shipRate, in.ShippingTaxAmount)
	if v.shipRate != nil {
		t.shipRate = v.shipRate.base()
	}
	t.shipTotal = t.shipNet.Add(t.shipTax)
	t.net = t.net.Add(t.shipNet)
	t.tax = t.tax.Add(t.shipTax)
	t.total = t.net.Add(t.tax)
	t.baseNet, t.baseTax, t.baseTotal = toBase(t.net, v.rate), toBase(t.tax, v.rate), toBase(t.total, v.rate)
	t.baseShipTotal = toBase(t.shipTotal, v.rate)
	return t
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

// dueDate is date plus the contact's credit days (30 when unset).
func dueDate(date string, c *Contact) string {
	days := 30
	if c.CreditDays > 0 {
		days = c.CreditDays
	}
	d, _ := time.Parse(time.DateOnly, date)
	return d.AddDate(0, 0, days).Format(time.DateOnly)
}
