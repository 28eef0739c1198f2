package mapper

import (
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/policy"
	"github.com/ledgersync/ledger/services/mapper/quirks"
)

// Fixed descriptions of the lines the mapper adds to reconcile a document
// with Magento's grand_total (README, "To the penny").
const (
	DescShipping       = "Shipping"
	DescShippingRefund = "Shipping refund"
	DescDiscount       = "Discount"
	DescGiftCard       = "Gift card"
	DescStoreCredit    = "Store credit"
	DescAdjustRefund   = "Adjustment refund"
	DescAdjustFee      = "Adjustment fee"
	DescRounding       = "Rounding"
)

// salesDoc is the money part of a sales invoice or credit note as Sage will
// compute it.
type salesDoc struct {
	lines             []SageInvoiceLine
	euTypes           []string
	shipNet, shipTax  money.Amount
	shipRate          string
	lineDiscounts     money.Amount
	cross             bool
	zeroRateID        string
	hasHeaderShipping bool
}

// total is Σ line totals + shipping, what Sage will book.
func (d *salesDoc) total() money.Amount {
	t := d.shipNet.Add(d.shipTax)
	for _, l := range d.lines {
		t = t.Add(l.TotalAmount)
	}
	return t
}

func (d *salesDoc) header() (net, tax, total money.Amount) {
	net, tax = d.shipNet, d.shipTax
	for _, l := range d.lines {
		net, tax = net.Add(l.NetAmount), tax.Add(l.TaxAmount)
	}
	return net, tax, net.Add(tax)
}

// newSalesDoc starts a document; cross is the cross-border test of quirks 29
// and 30.
func (m *mapping) newSalesDoc(cross bool) *salesDoc {
	return &salesDoc{cross: cross, zeroRateID: m.use("zero_tax_rate_id", policy.RefTaxRates, m.b.Policy.ZeroTaxRateID)}
}

// addItems maps Magento's items. A line whose every amount is zero (a
// configurable or bundle child: its parent carries the amounts, and Magento
// sends no parent link)
// is folded away when the document has another line, so nothing is counted
// twice; a document of zero lines only keeps its first.
func (m *mapping) addItems(d *salesDoc, items []magento.InvoiceLine) {
	nonEmpty := 0
	for _, l := range items {
		if !isEmptyLine(l) {
			nonEmpty++
		}
	}
	for i, l := range items {
		if isEmptyLine(l) && (nonEmpty > 0 || i > 0) {
			continue
		}
		m.addItem(d, l)
	}
}

func (m *mapping) addItem(d *salesDoc, l magento.InvoiceLine) {
	subtotal := l.LineSubtotal.Cents()
	tax := l.LineTax.Cents()
	desc, changed := quirks.Description(l.Name, l.SKU)
	if changed {
		m.q[quirks.NameDescription] = true
	}
	line := SageInvoiceLine{
		Description:     desc,
		LedgerAccountID: m.ledger("default_ledger_account_id", ""),
		NetAmount:       subtotal,
	}
	line.Quantity, line.UnitPrice = quantityAndPrice(l.Qty.Amount, l.UnitPrice.Amount, subtotal)
	// Magento folds an item's discount into line_total only; lines have no discount field.
	if discount := subtotal.Add(tax).Sub(l.LineTotal.Cents()); discount.Sign() > 0 {
		line.DiscountAmount = &discount
		line.NetAmount = subtotal.Sub(discount)
		d.lineDiscounts = d.lineDiscounts.Add(discount)
	}
	line.TaxRateID = m.lineTaxRateID(l, line.NetAmount, tax)
	m.setTax(d, &line, tax)
	d.lines = append(d.lines, line)
	d.euTypes = append(d.euTypes, m.b.Policy.EUType(l.ProductType))
}

// setTax fills a line's tax (quirk 7: tax_amount and currency_tax_amount,
// always). On a cross-border document the line is zero-rated (quirk 29) and its
// tax is moved later by finishTax.
func (m *mapping) setTax(d *salesDoc, line *SageInvoiceLine, tax money.Amount) {
	m.q[quirks.NameLineTax] = true
	if d.cross {
		line.TaxRateID = d.zeroRateID
		line.TotalAmount = line.NetAmount.Add(tax) // remembered until finishTax
		lt := quirks.LineTax(money.Zero)
		line.TaxAmount, line.CurrencyTaxAmount = lt.TaxAmount, lt.CurrencyTaxAmount
		return
	}
	lt := quirks.LineTax(tax)
	line.TaxAmount, line.CurrencyTaxAmount = lt.TaxAmount, lt.CurrencyTaxAmount
	line.TotalAmount = line.NetAmount.Add(line.TaxAmount)
}

// addExtra adds a fixed line of the mapper's (shipping, discount, gift card,
// adjustment, rounding) on account, zero-rated when tax is zero.
func (m *mapping) addExtra(d *salesDoc, desc, accountField, accountID string, net, tax money.Amount, euType string) {
	line := SageInvoiceLine{
		Description: desc, LedgerAccountID: m.ledger(accountField, accountID),
		Quantity: money.Number{Amount: money.MustParse("1")}, UnitPrice: money.Number{Amount: net}, NetAmount: net,
	}
	if tax.IsZero() {
		line.TaxRateID = d.zeroRateID
	} else {
		line.TaxRateID = m.taxRateID(tax, net)
	}
	m.setTax(d, &line, tax)
	d.lines = append(d.lines, line)
	if euType == "" {
		euType = m.b.Policy.EUGoodsServicesDefault
	}
	d.euTypes = append(d.euTypes, euType)
}

// setShipping applies quirk 32 to the document's shipping. Untaxed shipping
// takes the zero rate. Taxed shipping stays in the header when Sage's own
// computation (net × the mapped rate, half-up) gives Magento's tax to the
// penny; otherwise (a shipping discount, a rounding difference) it becomes a
// "Shipping" line carrying Magento's tax as charged, since Sage keeps line tax
// as sent.
func (m *mapping) setShipping(d *salesDoc, net, tax money.Amount, rates map[string]decimal.Decimal) {
	net, tax = net.Cents(), tax.Cents()
	if net.IsZero() && tax.IsZero() {
		d.shipRate = d.zeroRateID
		d.hasHeaderShipping = true
		return
	}
	if d.cross {
		// Quirk 29: shipping is zero-rated too; its tax moves with the lines'.
		d.shipNet, d.shipRate, d.hasHeaderShipping = net, d.zeroRateID, true
		d.lines = append(d.lines, SageInvoiceLine{Description: "\x00shipping-tax", TotalAmount: tax}) // placeholder, see finishTax
		return
	}
	rateID, zero := quirks.ShippingTaxRate(tax, d.zeroRateID, m.taxRateID(tax, net))
	m.q[quirks.NameShippingZeroRate] = m.q[quirks.NameShippingZeroRate] || zero
	if zero {
		d.shipNet, d.shipTax, d.shipRate, d.hasHeaderShipping = net, money.Zero, rateID, true
		return
	}
	if pct, ok := rates[rateID]; ok && net.MulDecimal(pct.Shift(-2)).Cents().Equal(tax) {
		d.shipNet, d.shipTax, d.shipRate, d.hasHeaderShipping = net, tax, rateID, true
		return
	}
	d.shipRate, d.hasHeaderShipping = d.zeroRateID, true
	m.addExtra(d, DescShipping, "carriage_ledger_account_id", m.b.Policy.CarriageLedgerAccountID, net, tax, "")
}

// finishTax completes quirk 29 on a cross-border document: every line carries no
// tax, and the tax the shop charged moves to one zero-rated line, so the
// total is unchanged.
func (m *mapping) finishTax(d *salesDoc) {
	if !d.cross {
		return
	}
	moved := money.Zero
	kept := d.lines[:0]
	keptTypes := d.euTypes[:0]
	ti := 0
	for _, l := range d.lines {
		if l.Description == "\x00shipping-tax" {
			moved = moved.Add(l.TotalAmount)
			continue
		}
		moved = moved.Add(l.TotalAmount.Sub(l.NetAmount))
		l.TotalAmount = l.NetAmount
		kept = append(kept, l)
		if ti < len(d.euTypes) {
			keptTypes = append(keptTypes, d.euTypes[ti])
		}
		ti++
	}
	d.lines, d.euTypes = kept, keptTypes
	m.q[quirks.NameZeroRatedOutside] = true
	if !moved.IsZero() {
		m.addExtra(d, quirks.TaxMovedDescription, "default_ledger_account_id", "", moved, money.Zero, "")
	}
}

// finishEU applies quirk 30 to a cross-border document, once every line is
// in: one eu_goods_services_type_id on every line, the lines' common type or
// the policy default when they mix.
func (m *mapping) finishEU(d *salesDoc) {
	if !d.cross {
		return
	}
	typ, coerced := quirks.EUGoodsServices(d.euTypes, m.b.Policy.EUGoodsServicesDefault)
	m.q[quirks.NameEUGoodsServices] = true
	if coerced {
		m.q[quirks.NoteMixedEUCoerced] = true
	}
	for i := range d.lines {
		d.lines[i].EUGoodsServicesTypeID = typ
	}
}

// reconcile books the difference between Magento's grand_total and what Sage
// will compute (README, "To the penny"): first a header discount Magento did
// not spread over the lines (a shipping discount), as a "Discount" line, then
// a residue within the policy's rounding_tolerance as a "Rounding" line on
// rounding_ledger_account_id. On an invoice (invoice true), what is left of
// a grand_total below the document is, when the tenant's unitemised_credit
// covers it, a gift card or store credit the feed does not itemise: returned
// as shortfall, for the caller to receive from the clearing account, while
// the document keeps its full value. Any other residue fails the run.
func (m *mapping) reconcile(d *salesDoc, grand, headerDiscount money.Amount, invoice bool, what string) (shortfall money.Amount, err error) {
	r := grand.Cents().Sub(d.total())
	if r.IsZero() {
		return money.Zero, nil
	}
	if extra := headerDiscount.Abs().Cents().Sub(d.lineDiscounts); r.Sign() < 0 && extra.Sign() > 0 {
		take := extra
		if r.Neg().Cmp(take) < 0 {
			take = r.Neg()
		}
		m.addExtra(d, DescDiscount, "default_ledger_account_id", "", take.Neg(), money.Zero, "")
		r = r.Add(take)
	}
	if r.IsZero() {
		return money.Zero, nil
	}
	if r.Abs().Cmp(m.b.Policy.Tolerance()) <= 0 {
		m.addExtra(d, DescRounding, "rounding_ledger_account_id", m.b.Policy.RoundingLedgerAccountID, r, money.Zero, "")
		return money.Zero, nil
	}
	credit := m.b.Policy.UnitemisedCredit
	if invoice && credit.Covers(r.Neg(), d.total()) {
		return r.Neg(), nil
	}
	fix := "check the document's totals in Magento"
	switch {
	case !invoice || r.Sign() > 0:
	case credit == nil:
		fix = "if the shop applies gift cards or store credit that the invoice does not itemise, set unitemised_credit (bank_account_id, max_share) in the tenant policy and retry"
	default:
		fix = fmt.Sprintf("the shortfall is over unitemised_credit.max_share %s of the invoice: check the order in Magento, or raise max_share in the tenant policy and retry", credit.MaxShare.Exact())
	}
	return money.Zero, failf(ClassValidation, CodeTotalsMismatch,
		"%s: the lines and shipping come to %s but Magento's grand_total is %s; the difference %s is over the rounding tolerance %s (rounding_tolerance in the tenant policy): %s",
		what, d.total(), grand.Cents(), r, m.b.Policy.Tolerance(), fix)
}

// quantityAndPrice keeps Magento's quantity and unit price when Sage's line
// net, round(quantity × unit price, 2), gives the subtotal; otherwise the unit
// price is the subtotal divided by the quantity when that is exact to six
// places, else the line is sent as quantity 1 at the subtotal.
func quantityAndPrice(qty, unit, subtotal money.Amount) (money.Number, money.Number) {
	if qty.Sign() > 0 && qty.Mul(unit).Cents().Equal(subtotal) {
		return money.Number{Amount: qty}, money.Number{Amount: unit}
	}
	if qty.Sign() > 0 {
		u := money.FromDecimal(subtotal.Decimal().DivRound(qty.Decimal(), 6))
		if qty.Mul(u).Cents().Equal(subtotal) {
			return money.Number{Amount: qty}, money.Number{Amount: u}
		}
	}
	return money.Number{Amount: money.MustParse("1")}, money.Number{Amount: subtotal}
}

// lineTaxRateID maps a line's applied percentage to a Sage tax rate: the
// ratio Magento sent, else tax ÷ subtotal, else tax ÷ discounted net (Magento's
// ratio understates the rate when the discount is applied before tax). A line
// without tax takes the zero rate; an unmapped percentage the default rate.
func (m *mapping) lineTaxRateID(l magento.InvoiceLine, net, tax money.Amount) string {
	if tax.IsZero() {
		return m.use("zero_tax_rate_id", policy.RefTaxRates, m.b.Policy.ZeroTaxRateID)
	}
	var candidates []string
	if l.TaxRate != nil && l.TaxRate.Sign() > 0 {
		candidates = append(candidates, percent(l.TaxRate.Decimal().Mul(hundred)))
	}
	candidates = append(candidates, ratioPercent(tax, l.LineSubtotal.Cents()), ratioPercent(tax, net))
	for _, pct := range candidates {
		if id, ok := m.b.Policy.TaxRateMap[pct]; ok && pct != "" {
			return m.use(`tax_rate_map["`+pct+`"]`, policy.RefTaxRates, id)
		}
	}
	return m.use("default_tax_rate_id", policy.RefTaxRates, m.b.Policy.DefaultTaxRateID)
}

// taxRateID maps tax ÷ net to a Sage rate, the default when unmapped.
func (m *mapping) taxRateID(tax, net money.Amount) string {
	if tax.IsZero() {
		return m.use("zero_tax_rate_id", policy.RefTaxRates, m.b.Policy.ZeroTaxRateID)
	}
	pct := ratioPercent(tax, net)
	if id, ok := m.b.Policy.TaxRateMap[pct]; ok {
		return m.use(`tax_rate_map["`+pct+`"]`, policy.RefTaxRates, id)
	}
	return m.use("default_tax_rate_id", policy.RefTaxRates, m.b.Policy.DefaultTaxRateID)
}

// ratePercentages are the percentages of the mapped rates, as the tax-rate map
// keys say (used to predict Sage's shipping-tax computation).
func (m *mapping) ratePercentages() map[string]decimal.Decimal {
	out := map[string]decimal.Decimal{}
	for pct, id := range m.b.Policy.TaxRateMap {
		if d, err := decimal.NewFromString(pct); err == nil {
			if _, dup := out[id]; !dup {
				out[id] = d
			}
		}
	}
	return out
}

var hundred = decimal.NewFromInt(100)

func percent(d decimal.Decimal) string { return d.Round(2).StringFixed(2) }

// ratioPercent is tax ÷ net as a percentage with two decimals ("20.00"); "" when
// net is not positive.
func ratioPercent(tax, net money.Amount) string {
	if net.Sign() <= 0 {
		return ""
	}
	return percent(tax.Decimal().Mul(hundred).DivRound(net.Decimal(), 4))
}

func isEmptyLine(l magento.InvoiceLine) bool {
	return l.UnitPrice.IsZero() && l.LineSubtotal.IsZero() && l.LineTax.IsZero() && l.LineTotal.IsZero()
}
