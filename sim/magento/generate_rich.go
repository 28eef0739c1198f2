package magentosim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
)

// Rich canonical data: invoices and credit memos with everything a real shop
// sends and a naive mapper gets wrong. Each document is consistent the way
// Magento computes it (wire §4.3, §4.4, §4.6):
//
//   - multi-currency, base_to_order_rate on either side of 1 (GBP base);
//   - line discounts folded into line_total (tax after discount, so tax_rate
//     understates the rate), a header discount_amount that also carries a
//     shipping discount no line shows;
//   - standard, reduced, zero-rated and exempt lines, taxed and untaxed
//     shipping;
//   - configurable parents with a zero-value child, dynamic bundles (zero
//     parent, priced children) and fixed bundles (priced parent, zero
//     children);
//   - HTML entities (double-encoded too), tags and emoji in names;
//   - guests with mixed-case, padded e-mails, registered and B2B customers,
//     cross-border billing addresses (tax charged or not);
//   - zero-value invoices; occasional one-penny rounding residues and
//     quantities whose unit price does not multiply out to the row total;
//   - credit memos refunding part of an invoice, with shipping refunds and
//     positive/negative adjustments.

// RichCustomer is a customer of the rich generator: registered (MagentoID > 0)
// or a guest, with a fixed billing address so every order agrees on its
// country.
type RichCustomer struct {
	Contact magento.Contact
	Billing magento.Address
	B2B     bool
}

// richCurrencies are the order currencies (GBP is the base).
var richCurrencies = []string{"GBP", "GBP", "GBP", "EUR", "USD", "CHF", "SEK", "AUD", "CAD"}

// richNames are product names as Magento stores them.
var richNames = []string{
	"Ledger&trade; Ceramic Mug", "Tea &amp; Biscuits", "Caf&eacute; Logo T-Shirt", "Rocket Socks 🚀",
	"Double &amp;amp;trade; Encoded", "<b>Bold</b> Notebook", "Crème Brûlée Torch", "Chef’s Knife 8&Prime;",
	"Emoji Pack 😀🎉", "Desk Lamp &lt;LED&gt;", "Plain Widget", "  Spaced   Out\tName  ", "Gift Box &#8482;",
}

var richCountries = []string{"IE", "FR", "DE", "US", "ES", "NL", "CH"}

// RandomRichCustomers builds n customers (without saving them): about a third
// guests (e-mails in mixed case, some padded), some B2B, about a quarter
// billed outside GB. Registered ones get ids firstID, firstID+1, ….
func RandomRichCustomers(rng *rand.Rand, n int, firstID int64) []RichCustomer {
	out := make([]RichCustomer, 0, n)
	for i := range n {
		first, last := pick(rng, firstNames), pick(rng, lastNames)
		email := emailFor(rng, first, last)
		bill := randomAddress(rng, "billing")
		if rng.IntN(4) == 0 {
			bill = magento.Address{Kind: "billing", Street: []string{fmt.Sprintf("%d Rue Exemple", 1+rng.IntN(99))},
				City: "Ville", Postcode: fmt.Sprintf("%05d", rng.IntN(99999)), CountryID: pick(rng, richCountries)}
		} else {
			bill.CountryID = "GB"
		}
		c := magento.Contact{Email: email, FirstName: first, LastName: last, Phone: bill.Telephone}
		rc := RichCustomer{Billing: bill}
		if rng.IntN(3) == 0 { // guest
			if rng.IntN(2) == 0 {
				c.Email = mixCase(rng, email)
			}
			if rng.IntN(5) == 0 {
				c.Email = "  " + c.Email + " "
			}
			c.Addresses = []magento.Address{bill}
		} else {
			c.MagentoID = firstID + int64(i)
			c.WebsiteID = 1
			c.Addresses = []magento.Address{bill, withKind(bill, "shipping")}
		}
		if rng.IntN(6) == 0 {
			c.Company = pick(rng, companies) + " " + pick(rng, []string{"&amp; Sons", "GmbH", "SARL", "Ltd"})
			rc.B2B = true
		}
		rc.Contact = c
		out = append(out, rc)
	}
	return out
}

func mixCase(rng *rand.Rand, s string) string {
	var b strings.Builder
	for _, r := range s {
		if rng.IntN(2) == 0 {
			b.WriteString(strings.ToUpper(string(r)))
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func cents(c int64) money.Amount { return money.FromCents(c) }

// richLine builds one priced line: qty × unit, a discount, tax on the
// discounted amount (Magento's default "apply discount before tax").
func richLine(rng *rand.Rand, sku, name, ptype string, rate money.Amount) (magento.InvoiceLine, money.Amount) {
	qty := int64(1 + rng.IntN(3))
	unit := cents(int64(50 + rng.IntN(20000)))
	l := BuildLine(sku, name, ptype, qty, unit, money.Zero)
	sub := l.LineSubtotal.Amount
	discount := money.Zero
	if rng.IntN(4) == 0 {
		discount = sub.MulDecimal(money.MustParse(pick(rng, []string{"0.1", "0.15", "0.25", "0.333"})).Decimal()).Cents()
	}
	tax := sub.Sub(discount).Mul(rate).Cents()
	l.LineTax = num(tax)
	l.LineTotal = num(sub.Add(tax).Sub(discount))
	l.TaxRate = nil
	if sub.Sign() > 0 && tax.Sign() > 0 {
		r := num(money.FromDecimal(tax.Decimal().DivRound(sub.Decimal(), 4)))
		l.TaxRate = &r
	}
	if rng.IntN(25) == 0 && qty == 3 {
		// A row total a penny off qty × price (Magento rounds the row from a
		// tax-inclusive price).
		l.LineSubtotal = num(sub.Add(cents(1)))
		l.LineTotal = num(l.LineTotal.Add(cents(1)))
	}
	return l, discount
}

func zeroLine(sku, name, ptype string, qty int64) magento.InvoiceLine {
	return magento.InvoiceLine{SKU: sku, Name: name, Qty: num(cents(qty * 100)), ProductType: ptype}
}

// RandomRichInvoice builds (without saving) one invoice for customer c:
// MagentoID id, every feature listed in the file comment mixed in at random.
// It is open or paid, and its totals are exactly Magento's.
func RandomRichInvoice(rng *rand.Rand, id int64, c RichCustomer) magento.Invoice {
	inv := magento.Invoice{MagentoID: id, IncrementID: fmt.Sprintf("%09d", id), OrderID: id, OrderIncrementID: fmt.Sprintf("%09d", id),
		WebsiteID: 1, StoreID: 1, State: InvoiceOpen, CreatedAt: fmt.Sprintf("2026-%02d-%02dT%02d:%02d:00Z", 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60))}
	if rng.IntN(2) == 0 {
		inv.State = InvoicePaid
	}
	inv.Currency = pick(rng, richCurrencies)
	if inv.Currency == "GBP" {
		one := num(money.MustParse("1"))
		if rng.IntN(3) > 0 {
			inv.BaseToOrderRate = &one
		}
	} else {
		// Either side of 1, with up to 6 decimals.
		// 0.4 to 2.0 with six decimals.
		r := num(money.FromDecimal(money.FromCents(int64(400000 + rng.IntN(1600001))).Decimal().Shift(-4)))
		inv.BaseToOrderRate = &r
	}
	cross := c.Billing.CountryID != "GB"
	chargesTax := !cross || rng.IntN(3) == 0
	rateFor := func(std string) money.Amount {
		if !chargesTax {
			return money.Zero
		}
		return money.MustParse(std)
	}

	var discounts money.Amount
	physical := false
	zeroValue := rng.IntN(30) == 0
	for n := range 1 + rng.IntN(4) {
		name := pick(rng, richNames)
		sku := fmt.Sprintf("SKU-%d-%d", id, n)
		switch k := rng.IntN(12); {
		case k < 4: // simple, standard rate
			l, d := richLine(rng, sku, name, "simple", rateFor("0.2"))
			inv.Lines, discounts, physical = append(inv.Lines, l), discounts.Add(d), true
		case k == 4: // reduced rate
			l, d := richLine(rng, sku, name, "simple", rateFor("0.05"))
			inv.Lines, discounts, physical = append(inv.Lines, l), discounts.Add(d), true
		case k == 5: // zero-rated
			l, d := richLine(rng, sku, "Book: "+name, "simple", money.Zero)
			inv.Lines, discounts, physical = append(inv.Lines, l), discounts.Add(d), true
		case k == 6: // exempt (Magento: tax class with no rate)
			l, d := richLine(rng, sku, "Exempt "+name, "virtual", money.Zero)
			l.TaxClass = "exempt"
			inv.Lines, discounts = append(inv.Lines, l), discounts.Add(d)
		case k == 7: // virtual / downloadable service
			l, d := richLine(rng, sku, name, pick(rng, []string{"virtual", "downloadable"}), rateFor("0.2"))
			inv.Lines, discounts = append(inv.Lines, l), discounts.Add(d)
		case k == 8: // configurable: priced parent, zero child
			l, d := richLine(rng, sku, name+" (configurable)", "configurable", rateFor("0.2"))
			inv.Lines = append(inv.Lines, l, zeroLine(sku+"-M", name+" - M", "simple", 1))
			discounts, physical = discounts.Add(d), true
		case k == 9: // dynamic bundle: zero parent, priced children
			inv.Lines = append(inv.Lines, zeroLine(sku, name+" Bundle", "bundle", 1))
			for ch := range 2 {
				l, d := richLine(rng, fmt.Sprintf("%s-C%d", sku, ch), name+" part", "simple", rateFor("0.2"))
				inv.Lines, discounts = append(inv.Lines, l), discounts.Add(d)
			}
			physical = true
		case k == 10: // fixed bundle: priced parent, zero children
			l, d := richLine(rng, sku, name+" Set", "bundle", rateFor("0.2"))
			inv.Lines = append(inv.Lines, l, zeroLine(sku+"-A", "part A", "simple", 1), zeroLine(sku+"-B", "part B", "simple", 1))
			discounts, physical = discounts.Add(d), true
		default: // a free gift: a zero-value line of its own
			inv.Lines, physical = append(inv.Lines, zeroLine(sku, name+" (free gift)", "simple", 1)), true
		}
	}
	if zeroValue { // a 100 % coupon
		discounts = money.Zero
		for i := range inv.Lines {
			inv.Lines[i].LineTax = num(money.Zero)
			inv.Lines[i].LineTotal = num(money.Zero)
			inv.Lines[i].TaxRate = nil
			discounts = discounts.Add(inv.Lines[i].LineSubtotal.Amount)
		}
	}

	bill := c.Billing
	inv.BillingAddress = &bill
	if physical && !zeroValue {
		ship := withKind(bill, "shipping")
		inv.ShippingAddress = &ship
		shipNet := cents(pick(rng, []int64{0, 395, 499, 650, 999, 1250}))
		shipDiscount := money.Zero
		if shipNet.Sign() > 0 && rng.IntN(8) == 0 {
			shipDiscount = shipNet.MulDecimal(money.MustParse("0.5").Decimal()).Cents()
		}
		inv.ShippingAmount = num(shipNet)
		if chargesTax && rng.IntN(4) != 0 {
			inv.ShippingTaxAmount = num(shipNet.Sub(shipDiscount).Mul(money.MustParse("0.2")).Cents())
		}
		discounts = discounts.Add(shipDiscount)
	} else if physical {
		ship := withKind(bill, "shipping")
		inv.ShippingAddress = &ship
	}
	inv.DiscountAmount = num(discounts.Neg())
	// Magento: grand = Σ row totals + tax + shipping − discounts.
	sub, tax := money.Zero, inv.ShippingTaxAmount.Amount
	for _, l := range inv.Lines {
		sub, tax = sub.Add(l.LineSubtotal.Amount), tax.Add(l.LineTax.Amount)
	}
	inv.Subtotal, inv.TaxAmount = num(sub), num(tax)
	grand := sub.Add(tax).Add(inv.ShippingAmount.Amount).Sub(discounts)
	if !zeroValue && rng.IntN(40) == 0 {
		grand = grand.Add(cents(pick(rng, []int64{-1, 1}))) // a rounding residue
	}
	inv.GrandTotal = num(grand)

	inv.Customer = c.Contact
	inv.Customer.Addresses = slices.Clone(c.Contact.Addresses)
	if c.B2B {
		inv.PaymentMethod, inv.PONumber = "purchaseorder", fmt.Sprintf("PO-%05d", rng.IntN(100000))
	} else {
		inv.PaymentMethod = pick(rng, []string{"stripe_payments", "paypal_express", "checkmo", "banktransfer"})
	}
	if zeroValue {
		inv.PaymentMethod = "free"
	}
	return inv
}

// RandomRichCreditMemo builds (without saving) a credit memo of inv: some or
// all of its priced lines (children folded away, as Magento refunds parents),
// maybe its shipping, maybe adjustments. Its grand_total is Magento's:
// Σ line totals + shipping + shipping tax + adjustment_positive −
// adjustment_negative, never negative.
func RandomRichCreditMemo(rng *rand.Rand, id int64, inv magento.Invoice) CreditMemo {
	iid := inv.MagentoID
	cm := CreditMemo{MagentoID: id, IncrementID: fmt.Sprintf("%09d", id), InvoiceID: &iid, InvoiceIncrementID: inv.IncrementID,
		WebsiteID: inv.WebsiteID, Currency: inv.Currency, Customer: inv.Customer, BaseToOrderRate: inv.BaseToOrderRate,
		CreatedAt: inv.CreatedAt, InvoiceCreatedAt: inv.CreatedAt, Reason: pick(rng, []string{"", "Damaged in transit", "Changed mind &amp; returned"})}
	cm.Customer.Addresses = slices.Clone(inv.Customer.Addresses)
	total := money.Zero
	for _, l := range inv.Lines {
		if l.LineTotal.IsZero() && l.LineSubtotal.IsZero() {
			continue
		}
		if rng.IntN(3) == 0 && len(cm.Lines) > 0 {
			continue
		}
		cm.Lines = append(cm.Lines, l)
		total = total.Add(l.LineTotal.Amount)
	}
	if len(cm.Lines) == 0 && len(inv.Lines) > 0 {
		cm.Lines = append(cm.Lines, inv.Lines[0])
		total = total.Add(inv.Lines[0].LineTotal.Amount)
	}
	if rng.IntN(2) == 0 {
		cm.ShippingAmount, cm.ShippingTaxAmount = inv.ShippingAmount, inv.ShippingTaxAmount
		total = total.Add(inv.ShippingAmount.Amount).Add(inv.ShippingTaxAmount.Amount)
	}
	if rng.IntN(3) == 0 {
		cm.AdjustmentPositive = num(cents(int64(rng.IntN(1500))))
		total = total.Add(cm.AdjustmentPositive.Amount)
	}
	if rng.IntN(3) == 0 {
		neg := cents(int64(rng.IntN(1000)))
		if neg.Cmp(total) > 0 {
			neg = total
		}
		cm.AdjustmentNegative = num(neg)
		total = total.Sub(neg)
	}
	cm.GrandTotal = num(total)
	return cm
}

// CreateCreditMemoFrom stores a credit memo built by the caller (e.g.
// RandomRichCreditMemo, or one with adjustments) and, when connected,
// enqueues creditmemo.created:{id}. A zero MagentoID or IncrementID is filled
// in; CreatedAt defaults to now.
func (s *Shop) CreateCreditMemoFrom(cm CreditMemo) (CreditMemo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var storeID int64 // the envelope's store: the credited invoice's
	if cm.InvoiceID != nil {
		rec, ok := s.invoices[*cm.InvoiceID]
		if !ok {
			return CreditMemo{}, fmt.Errorf("invoice %d: %w", *cm.InvoiceID, ErrNotFound)
		}
		storeID = rec.inv.StoreID
	}
	if cm.MagentoID == 0 {
		s.nextCreditMemoID++
		cm.MagentoID = s.nextCreditMemoID
	} else if _, dup := s.creditMemos[cm.MagentoID]; dup {
		return CreditMemo{}, fmt.Errorf("%w: credit memo %d already exists", ErrInvalid, cm.MagentoID)
	} else if cm.MagentoID > s.nextCreditMemoID {
		s.nextCreditMemoID = cm.MagentoID
	}
	if cm.IncrementID == "" {
		cm.IncrementID = fmt.Sprintf("%09d", cm.MagentoID)
	}
	if cm.CreatedAt == "" {
		cm.CreatedAt = s.now().Format(timeLayout)
	}
	if cm.Lines == nil {
		cm.Lines = []magento.InvoiceLine{}
	}
	if cm.Customer.Addresses == nil {
		cm.Customer.Addresses = []magento.Address{}
	}
	stored := cm
	s.creditMemos[cm.MagentoID] = &stored
	s.observeLocked(Event{
		Name: "creditmemo.created", IdempotencyKey: fmt.Sprintf("creditmemo.created:%d", cm.MagentoID),
		MagentoEntityID: cm.MagentoID, WebsiteID: cm.WebsiteID, StoreID: storeID,
		Payload: incrementPayload{IncrementID: cm.IncrementID},
	})
	return cm, nil
}

// RandomRichProduct builds (without saving) a product of every type in turn
// (simple, virtual, downloadable, configurable, bundle, grouped), with an
// entity-laden name.
func RandomRichProduct(rng *rand.Rand, n int) Product {
	types := []string{"simple", "virtual", "downloadable", "configurable", "bundle", "grouped"}
	price := num(cents(int64(100 + rng.IntN(10000))))
	cost := num(price.Amount.MulDecimal(money.MustParse("0.4").Decimal()).Cents())
	tc := pick(rng, []string{"2", "0", "9"})
	p := Product{SKU: fmt.Sprintf("RICH-%04d", n), Name: pick(rng, richNames), ProductType: types[n%len(types)],
		Price: &price, Cost: &cost, TaxClass: tc, WebsiteIDs: []int64{1}}
	if p.ProductType == "simple" {
		q := num(cents(int64(100 * rng.IntN(500))))
		p.StockQty, p.ManageStock = &q, true
	}
	return p
}
