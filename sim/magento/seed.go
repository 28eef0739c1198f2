package magentosim

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
)

// Options sizes a Seed run.
type Options struct {
	// Customers is how many registered customers to create.
	Customers int
	// Invoices is how many invoices to create, spread over the customers.
	Invoices int
	// GuestShare is the fraction (0..1) of invoices placed by guests.
	GuestShare float64
	// PaidShare is the fraction (0..1) of invoices created in state paid.
	PaidShare float64
	// Spread, when positive, back-dates invoice created_at uniformly within it.
	Spread time.Duration
}

// SeedResult lists the ids Seed created.
type SeedResult struct {
	CustomerIDs []int64 `json:"customer_ids"`
	InvoiceIDs  []int64 `json:"invoice_ids"`
}

// catalogItem is a product template; rate is the UK VAT rate of its tax class.
type catalogItem struct {
	sku, name, ptype, taxClass string
	cents                      int64
	rate                       string
}

// catalog mixes standard (20 %), reduced (5 %) and zero-rated goods, virtual and
// downloadable items, and names with HTML entities and non-ASCII characters, as
// Magento stores them.
var catalog = []catalogItem{
	{"MUG-001", "Ledger&trade; Ceramic Mug", "simple", "2", 1299, "0.2"},
	{"TEA-ENG", "English Breakfast Tea &amp; Biscuits", "simple", "0", 850, "0"},
	{"BOOK-GO", "The Go Programming Language", "simple", "0", 3499, "0"},
	{"SEAT-CH", "Child Car Seat", "simple", "9", 8999, "0.05"},
	{"EBOOK-ACC", "Accounting for Shops (eBook)", "downloadable", "0", 999, "0"},
	{"SUP-PRO", "Pro Support Plan &ndash; 12 months", "virtual", "2", 12000, "0.2"},
	{"TSHIRT-M", "Caf&eacute; Logo T-Shirt (M)", "simple", "2", 1999, "0.2"},
	{"TORCH-CB", "Crème Brûlée Torch Set", "simple", "2", 2450, "0.2"},
	{"STICKER", "Die-cut Sticker", "simple", "2", 99, "0.2"},
	{"PEG-05", "Clothes Peg", "simple", "9", 7, "0.05"},
	{"AID-CMF", "Mobility Aid &quot;Comfort&quot;", "simple", "9", 5999, "0.05"},
	{"USB-C2", "USB-C Cable 2m", "simple", "2", 799, "0.2"},
	{"KNIFE-8", "Chef’s Knife 8&Prime;", "simple", "2", 4995, "0.2"},
	{"WRAP", "Gift Wrap", "virtual", "2", 250, "0.2"},
	{"LAMP-D", "Desk Lamp &lt;LED&gt;", "simple", "2", 3333, "0.2"},
}

var (
	firstNames = []string{"Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Noah", "Mia", "Jack", "Sophie", "Zoë", "Siân", "Seán", "Chloé", "Mohammed", "Priya", "Tomasz", "Aoife"}
	lastNames  = []string{"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Davies", "Evans", "Khan", "Patel", "O'Brien", "Nowak", "Müller", "Ó Súilleabháin"}
	companies  = []string{"Acme Trading Ltd", "Brightside & Co", "Northwind Supplies Ltd", "Pennine Crafts LLP"}
	gbPlaces   = []struct{ city, region, postcode, street string }{
		{"London", "", "SW1A 1AA", "10 Downing Street"},
		{"Manchester", "Greater Manchester", "M1 1AE", "1 Piccadilly Gardens"},
		{"Leeds", "West Yorkshire", "LS1 4DY", "22 Park Row"},
		{"Bristol", "", "BS1 5TR", "5 Queen Square"},
		{"Edinburgh", "Midlothian", "EH1 1YZ", "17 Royal Mile"},
		{"Cardiff", "", "CF10 1EP", "3 St Mary Street"},
		{"Belfast", "County Antrim", "BT1 5GS", "8 Donegall Place"},
		{"York", "North Yorkshire", "YO1 7HH", "12 The Shambles"},
	}
	otherPlaces = []struct{ country, city, region, postcode, street string }{
		{"IE", "Dublin", "Dublin", "D02 X285", "14 Grafton Street"},
		{"FR", "Paris", "Île-de-France", "75001", "4 Rue de Rivoli"},
		{"DE", "München", "Bayern", "80331", "Marienplatz 1"},
		{"US", "San Francisco", "California", "94103", "500 Market St"},
	}
)

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

func randomAddress(rng *rand.Rand, kind string) magento.Address {
	phone := fmt.Sprintf("07%03d %06d", rng.IntN(1000), rng.IntN(1000000))
	if rng.Float64() < 0.85 {
		p := pick(rng, gbPlaces)
		a := magento.Address{Kind: kind, Street: []string{p.street}, City: p.city, Region: p.region, Postcode: p.postcode, CountryID: "GB", Telephone: phone}
		if rng.IntN(4) == 0 {
			a.Street = append(a.Street, fmt.Sprintf("Flat %d", 1+rng.IntN(40)))
		}
		return a
	}
	p := pick(rng, otherPlaces)
	return magento.Address{Kind: kind, Street: []string{p.street}, City: p.city, Region: p.region, Postcode: p.postcode, CountryID: p.country, Telephone: phone}
}

func withKind(a magento.Address, kind string) magento.Address {
	a.Kind = kind
	return a
}

func emailFor(rng *rand.Rand, first, last string) string {
	clean := func(s string) string {
		var b strings.Builder
		for _, r := range strings.ToLower(s) {
			if r >= 'a' && r <= 'z' {
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	return fmt.Sprintf("%s.%s%d@%s", clean(first), clean(last), rng.IntN(10000), pick(rng, []string{"example.com", "example.co.uk", "mail.example.org"}))
}

// RandomCustomer builds (without saving) a registered customer: mostly GB, with
// default billing and shipping addresses (the same address twice, a different
// shipping address, or — occasionally — none, so the order fallback applies).
func RandomCustomer(rng *rand.Rand) magento.Contact {
	first, last := pick(rng, firstNames), pick(rng, lastNames)
	c := magento.Contact{Email: emailFor(rng, first, last), FirstName: first, LastName: last, WebsiteID: 1}
	bill := randomAddress(rng, "billing")
	c.Phone = bill.Telephone
	switch n := rng.IntN(10); {
	case n < 6:
		c.Addresses = []magento.Address{bill, withKind(bill, "shipping")}
	case n < 9:
		c.Addresses = []magento.Address{bill, randomAddress(rng, "shipping")}
	default:
		c.Addresses = []magento.Address{}
		c.Phone = ""
	}
	return c
}

// Seed fills the shop deterministically from rng: the catalog (stored silently,
// as products that existed before pairing), opts.Customers registered customers
// and opts.Invoices invoices over them, a GuestShare of them by guests and a
// PaidShare created paid. Customers and invoices go through the observers, so a
// connected shop enqueues customer.upserted, invoice.created and invoice.paid.
func (s *Shop) Seed(rng *rand.Rand, opts Options) SeedResult {
	s.ensureCatalog()
	var res SeedResult
	for range opts.Customers {
		c, err := s.UpsertCustomer(RandomCustomer(rng))
		if err == nil {
			res.CustomerIDs = append(res.CustomerIDs, c.MagentoID)
		}
	}
	for range opts.Invoices {
		var custID int64
		if len(res.CustomerIDs) > 0 && rng.Float64() >= opts.GuestShare {
			custID = pick(rng, res.CustomerIDs)
		}
		paid := rng.Float64() < opts.PaidShare
		var back time.Duration
		if opts.Spread > 0 {
			back = time.Duration(rng.Int64N(int64(opts.Spread)))
		}
		inv, err := s.createRandomInvoice(rng, custID, paid, back)
		if err == nil {
			res.InvoiceIDs = append(res.InvoiceIDs, inv.MagentoID)
		}
	}
	return res
}

// CreateRandomInvoice creates one generated invoice through the observer path, for
// registered customer customerID (0 for a guest), open or paid.
func (s *Shop) CreateRandomInvoice(rng *rand.Rand, customerID int64, paid bool) (magento.Invoice, error) {
	s.ensureCatalog()
	return s.createRandomInvoice(rng, customerID, paid, 0)
}

func (s *Shop) ensureCatalog() {
	s.mu.Lock()
	defer s.mu.Unlock()
	have := map[string]bool{}
	for _, p := range s.products {
		have[p.SKU] = true
	}
	for _, it := range catalog {
		if have[it.sku] {
			continue
		}
		price := money.Number{Amount: money.FromCents(it.cents)}
		tc := it.taxClass
		p := Product{SKU: it.sku, Name: it.name, ProductType: it.ptype, Price: &price, TaxClass: tc, WebsiteIDs: []int64{1}}
		if it.ptype == "simple" {
			qty := money.Number{Amount: money.FromCents(int64(100 * (10 + len(it.sku))))}
			p.StockQty, p.ManageStock = &qty, true
		}
		s.storeProductLocked(p)
	}
}

func num(a money.Amount) money.Number { return money.Number{Amount: a} }

// BuildLine computes an invoice line to the penny: subtotal = qty × unit,
// tax = round(subtotal × rate, 2), total = subtotal + tax, and tax_rate =
// round(tax / subtotal, 4) only when both are positive (wire §4.4).
func BuildLine(sku, name, productType string, qty int64, unit money.Amount, rate money.Amount) magento.InvoiceLine {
	q := money.FromCents(qty * 100)
	sub := unit.Mul(q).Round(2)
	tax := sub.Mul(rate).Round(2)
	l := magento.InvoiceLine{
		SKU: sku, Name: name, Qty: num(q), UnitPrice: num(unit), LineSubtotal: num(sub),
		LineTax: num(tax), LineTotal: num(sub.Add(tax)), ProductType: productType,
	}
	if sub.Sign() > 0 && tax.Sign() > 0 {
		r := num(money.FromDecimal(tax.Decimal().DivRound(sub.Decimal(), 4)))
		l.TaxRate = &r
	}
	return l
}

// Totals fills subtotal, tax_amount and grand_total of inv from its lines and
// shipping: subtotal = Σ line_subtotal, tax = Σ line_tax + shipping_tax, grand =
// subtotal + tax + shipping + discount.
func Totals(inv *magento.Invoice) {
	sub, tax := money.Zero, money.Zero
	for _, l := range inv.Lines {
		sub = sub.Add(l.LineSubtotal.Amount)
		tax = tax.Add(l.LineTax.Amount)
	}
	tax = tax.Add(inv.ShippingTaxAmount.Amount)
	inv.Subtotal = num(sub)
	inv.TaxAmount = num(tax)
	inv.GrandTotal = num(sub.Add(tax).Add(inv.ShippingAmount.Amount).Add(inv.DiscountAmount.Amount))
}

func (s *Shop) createRandomInvoice(rng *rand.Rand, customerID int64, paid bool, back time.Duration) (magento.Invoice, error) {
	var cust magento.Contact
	if customerID > 0 {
		c, ok := s.Customer(customerID)
		if !ok {
			return magento.Invoice{}, fmt.Errorf("customer %d: %w", customerID, ErrNotFound)
		}
		cust = c
	}
	inv := magento.Invoice{WebsiteID: 1, StoreID: 1, Currency: "GBP", State: InvoiceOpen}
	if paid {
		inv.State = InvoicePaid
	}
	one := num(money.FromCents(100))
	inv.BaseToOrderRate = &one
	inv.CreatedAt = s.now().Add(-back).Truncate(time.Second).Format(timeLayout)

	// Lines.
	physical := false
	for range 1 + rng.IntN(4) {
		it := pick(rng, catalog)
		qty := int64(1 + rng.IntN(3))
		if rng.IntN(12) == 0 {
			qty = 10 + int64(rng.IntN(40))
		}
		if it.ptype == "simple" {
			physical = true
		}
		inv.Lines = append(inv.Lines, BuildLine(it.sku, it.name, it.ptype, qty, money.FromCents(it.cents), money.MustParse(it.rate)))
	}

	// Addresses: the customer's defaults, or fresh ones for a guest.
	bill := randomAddress(rng, "billing")
	if customerID > 0 {
		for _, a := range cust.Addresses {
			if a.Kind == "billing" {
				bill = a
			}
		}
	}
	inv.BillingAddress = &bill
	if physical {
		ship := withKind(bill, "shipping")
		if rng.IntN(5) == 0 {
			ship = randomAddress(rng, "shipping")
		}
		inv.ShippingAddress = &ship
		shipCents := pick(rng, []int64{0, 395, 499, 499, 999})
		inv.ShippingAmount = num(money.FromCents(shipCents))
		if rng.IntN(5) != 0 { // most stores tax shipping at the standard rate
			inv.ShippingTaxAmount = num(inv.ShippingAmount.Mul(money.MustParse("0.2")).Round(2))
		}
	}
	Totals(&inv)

	// Customer: registered (resolved live at GET) or a synthetic guest.
	if customerID > 0 {
		inv.Customer = magento.Contact{MagentoID: customerID, Email: cust.Email}
	} else {
		first, last := pick(rng, firstNames), pick(rng, lastNames)
		inv.Customer = magento.Contact{
			Email: emailFor(rng, first, last), FirstName: first, LastName: last, Phone: bill.Telephone,
			Addresses: []magento.Address{bill},
		}
		if inv.ShippingAddress != nil && !sameAddress(inv.ShippingAddress, &bill) {
			inv.Customer.Addresses = append(inv.Customer.Addresses, *inv.ShippingAddress)
		}
	}

	// Payment.
	if paid {
		inv.PaymentMethod = pick(rng, []string{"stripe_payments", "stripe_payments", "paypal_express", "checkmo"})
	} else {
		inv.PaymentMethod = pick(rng, []string{"checkmo", "checkmo", "banktransfer", "banktransfer", "purchaseorder"})
	}
	if inv.PaymentMethod == "purchaseorder" {
		inv.PONumber = fmt.Sprintf("PO-%05d", rng.IntN(100000))
		inv.Customer.Company = pick(rng, companies)
	}
	if customerID == 0 {
		// A guest's timestamps are the order's.
		inv.Customer.CreatedAt, inv.Customer.UpdatedAt = inv.CreatedAt, inv.CreatedAt
	}
	created, err := s.CreateInvoice(inv)
	if err != nil {
		return magento.Invoice{}, err
	}
	return created, nil
}
