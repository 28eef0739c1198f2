package magentosim

import (
	"cmp"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/ledgersync/ledger/libs/magento"
)

// Product is the canonical product the shop serves.
type Product = magento.Product

// CreditMemo is the canonical credit memo the shop serves.
type CreditMemo = magento.CreditMemo

type invoiceRecord struct {
	inv      magento.Invoice
	txnID    string
	metadata []string
}

// Magento invoice states as the canonical document spells them.
const (
	InvoiceOpen      = "open"
	InvoicePaid      = "paid"
	InvoiceCancelled = "cancelled"
)

// timeLayout is the canonical documents' date format (wire §4.2).
const timeLayout = "2006-01-02T15:04:05Z"

// ErrInvalid marks an entity the simulator refuses to store.
var ErrInvalid = errors.New("magentosim: invalid entity")

// UpsertCustomer saves a registered customer (customer_save_after). MagentoID 0
// creates one; WebsiteID and GroupID default to 1. When connected, the Sage
// observer enqueues customer.upserted:{id} with payload {} and store_id 0; while a
// row with that key exists a re-save is silently dropped (wire §1.3).
func (s *Shop) UpsertCustomer(c magento.Contact) (magento.Contact, error) {
	if c.Email == "" {
		return magento.Contact{}, fmt.Errorf("%w: customer email is required", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().Format(timeLayout)
	if c.MagentoID == 0 {
		s.nextCustomerID++
		c.MagentoID = s.nextCustomerID
	} else if c.MagentoID > s.nextCustomerID {
		s.nextCustomerID = c.MagentoID
	}
	if old, ok := s.customers[c.MagentoID]; ok && c.CreatedAt == "" {
		c.CreatedAt = old.CreatedAt
	}
	if c.CreatedAt == "" {
		c.CreatedAt = now
	}
	c.UpdatedAt = now
	if c.WebsiteID == 0 {
		c.WebsiteID = 1
	}
	if c.GroupID == nil {
		g := int64(1)
		c.GroupID = &g
	}
	if c.Addresses == nil {
		c.Addresses = []magento.Address{}
	}
	stored := c
	s.customers[c.MagentoID] = &stored
	s.observeLocked(Event{
		Name: "customer.upserted", IdempotencyKey: fmt.Sprintf("customer.upserted:%d", c.MagentoID),
		MagentoEntityID: c.MagentoID, WebsiteID: c.WebsiteID, StoreID: 0, Payload: struct{}{},
	})
	return c, nil
}

// Customer returns the canonical contact of a registered customer as
// GET /V1/byte8/customer/:id serves it.
func (s *Shop) Customer(id int64) (magento.Contact, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.customerViewLocked(id)
}

// Customers returns every registered customer ordered by id.
func (s *Shop) Customers() []magento.Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]magento.Contact, 0, len(s.customers))
	for id := range s.customers {
		c, _ := s.customerViewLocked(id)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b magento.Contact) int { return cmp.Compare(a.MagentoID, b.MagentoID) })
	return out
}

// customerViewLocked applies the profile fallback of §4.5: with no default
// addresses, the latest order's billing (and a distinct shipping) address is used.
func (s *Shop) customerViewLocked(id int64) (magento.Contact, bool) {
	c, ok := s.customers[id]
	if !ok {
		return magento.Contact{}, false
	}
	v := *c
	v.Addresses = slices.Clone(c.Addresses)
	if len(v.Addresses) == 0 {
		var latest *invoiceRecord
		for _, r := range s.invoices {
			if r.inv.Customer.MagentoID == id && (latest == nil || r.inv.OrderID > latest.inv.OrderID) {
				latest = r
			}
		}
		if latest != nil {
			if a := latest.inv.BillingAddress; a != nil {
				v.Addresses = append(v.Addresses, *a)
			}
			if a := latest.inv.ShippingAddress; a != nil && !sameAddress(a, latest.inv.BillingAddress) {
				v.Addresses = append(v.Addresses, *a)
			}
		}
	}
	return v, true
}

func sameAddress(a, b *magento.Address) bool {
	if a == nil || b == nil {
		return false
	}
	return slices.Equal(a.Street, b.Street) && a.City == b.City && a.Postcode == b.Postcode && a.CountryID == b.CountryID
}

// UpsertProduct saves a catalog product (catalog_product_save_after). MagentoID 0
// creates one. When connected it enqueues product.upserted:{id} with website_id
// and store_id 0.
func (s *Shop) UpsertProduct(p Product) (Product, error) {
	if p.SKU == "" {
		return Product{}, fmt.Errorf("%w: product sku is required", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p = s.storeProductLocked(p)
	s.observeLocked(Event{
		Name: "product.upserted", IdempotencyKey: fmt.Sprintf("product.upserted:%d", p.MagentoID),
		MagentoEntityID: p.MagentoID, Payload: struct{}{},
	})
	return p, nil
}

func (s *Shop) storeProductLocked(p Product) Product {
	now := s.now().Format(timeLayout)
	if p.MagentoID == 0 {
		s.nextProductID++
		p.MagentoID = s.nextProductID
	} else if p.MagentoID > s.nextProductID {
		s.nextProductID = p.MagentoID
	}
	if p.ProductType == "" {
		p.ProductType = "simple"
	}
	if p.WebsiteIDs == nil {
		p.WebsiteIDs = []int64{1}
	}
	if p.CreatedAt == "" {
		p.CreatedAt = now
	}
	p.UpdatedAt = now
	stored := p
	s.products[p.MagentoID] = &stored
	return p
}

// Product returns a catalog product.
func (s *Shop) Product(id int64) (Product, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.products[id]
	if !ok {
		return Product{}, false
	}
	return *p, true
}

// CreateInvoice saves a new invoice (first save of sales_order_invoice_save_after).
// Zero MagentoID, OrderID, IncrementID ("%09d"), OrderIncrementID, Currency (GBP),
// State (open) and CreatedAt (now) are filled in. When connected and the state is
// open or paid, the observers enqueue invoice.created:{id} with payload
// {"increment_id","paid"}, and invoice.paid:{id} too when created paid. The
// amounts are stored as given; Seed builds consistent ones.
func (s *Shop) CreateInvoice(inv magento.Invoice) (magento.Invoice, error) {
	switch inv.State {
	case "":
		inv.State = InvoiceOpen
	case InvoiceOpen, InvoicePaid, InvoiceCancelled:
	default:
		return magento.Invoice{}, fmt.Errorf("%w: invoice state %q is not open, paid or cancelled", ErrInvalid, inv.State)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if inv.MagentoID == 0 {
		s.nextInvoiceID++
		inv.MagentoID = s.nextInvoiceID
	} else if _, dup := s.invoices[inv.MagentoID]; dup {
		return magento.Invoice{}, fmt.Errorf("%w: invoice %d already exists", ErrInvalid, inv.MagentoID)
	} else if inv.MagentoID > s.nextInvoiceID {
		s.nextInvoiceID = inv.MagentoID
	}
	if inv.OrderID == 0 {
		s.nextOrderID++
		inv.OrderID = s.nextOrderID
	} else if inv.OrderID > s.nextOrderID {
		s.nextOrderID = inv.OrderID
	}
	if inv.IncrementID == "" {
		inv.IncrementID = fmt.Sprintf("%09d", inv.MagentoID)
	}
	if inv.OrderIncrementID == "" {
		inv.OrderIncrementID = fmt.Sprintf("%09d", inv.OrderID)
	}
	if inv.Currency == "" {
		inv.Currency = "GBP"
	}
	if inv.CreatedAt == "" {
		inv.CreatedAt = s.now().Format(timeLayout)
	}
	if inv.Lines == nil {
		inv.Lines = []magento.InvoiceLine{}
	}
	if inv.Customer.Addresses == nil {
		inv.Customer.Addresses = []magento.Address{}
	}
	rec := &invoiceRecord{inv: inv}
	rec.txnID, rec.metadata = paymentDetails(inv.PaymentMethod, inv.IncrementID)
	s.invoices[inv.MagentoID] = rec

	if inv.State == InvoiceOpen || inv.State == InvoicePaid {
		s.observeLocked(Event{
			Name: "invoice.created", IdempotencyKey: fmt.Sprintf("invoice.created:%d", inv.MagentoID),
			MagentoEntityID: inv.MagentoID, WebsiteID: inv.WebsiteID, StoreID: inv.StoreID,
			Payload: invoiceCreatedPayload{IncrementID: inv.IncrementID, Paid: inv.State == InvoicePaid},
		})
	}
	if inv.State == InvoicePaid {
		s.observeInvoicePaidLocked(&inv)
	}
	view, _ := s.invoiceViewLocked(inv.MagentoID)
	return view, nil
}

type invoiceCreatedPayload struct {
	IncrementID string `json:"increment_id"`
	Paid        bool   `json:"paid"`
}

type incrementPayload struct {
	IncrementID string `json:"increment_id"`
}

func (s *Shop) observeInvoicePaidLocked(inv *magento.Invoice) {
	s.observeLocked(Event{
		Name: "invoice.paid", IdempotencyKey: fmt.Sprintf("invoice.paid:%d", inv.MagentoID),
		MagentoEntityID: inv.MagentoID, WebsiteID: inv.WebsiteID, StoreID: inv.StoreID,
		Payload: incrementPayload{IncrementID: inv.IncrementID},
	})
}

// observeLocked is the shared shape of the Sage observers: do nothing unless
// connected, mirror into the sage_accounting sync state, and never let an
// enqueue failure break the entity save.
func (s *Shop) observeLocked(e Event) {
	if !s.connectedLocked() {
		return
	}
	e.MirrorProvider = ProviderSage
	if _, err := s.enqueueLocked(e); err != nil {
		s.log.Error("Byte8: observer failed to enqueue", "event", e.Name, "entity_id", e.MagentoEntityID, "err", err)
	}
}

// PayInvoice moves an open invoice to paid (capture), which makes the observer
// enqueue invoice.paid:{id}. Paying a paid invoice is a no-op save.
func (s *Shop) PayInvoice(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.invoices[id]
	if !ok {
		return fmt.Errorf("invoice %d: %w", id, ErrNotFound)
	}
	switch rec.inv.State {
	case InvoicePaid:
		return nil
	case InvoiceCancelled:
		return fmt.Errorf("%w: invoice %d is cancelled", ErrInvalid, id)
	}
	rec.inv.State = InvoicePaid
	if rec.inv.PaymentMethod == "" {
		rec.inv.PaymentMethod = "checkmo"
		rec.txnID, rec.metadata = paymentDetails(rec.inv.PaymentMethod, rec.inv.IncrementID)
	}
	s.observeInvoicePaidLocked(&rec.inv)
	return nil
}

// Invoice returns the canonical invoice as GET /V1/byte8/invoice/:id serves it.
func (s *Shop) Invoice(id int64) (magento.Invoice, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.invoiceViewLocked(id)
}

// Invoices returns every invoice ordered by id, as the REST endpoint serves them.
func (s *Shop) Invoices() []magento.Invoice {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]magento.Invoice, 0, len(s.invoices))
	for id := range s.invoices {
		v, _ := s.invoiceViewLocked(id)
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b magento.Invoice) int { return cmp.Compare(a.MagentoID, b.MagentoID) })
	return out
}

// invoiceViewLocked resolves the customer live (a registered customer's current
// profile, enriched with the order's billing/shipping address when the profile
// lacks that kind; wire §4.5).
func (s *Shop) invoiceViewLocked(id int64) (magento.Invoice, bool) {
	rec, ok := s.invoices[id]
	if !ok {
		return magento.Invoice{}, false
	}
	v := rec.inv
	v.Lines = slices.Clone(rec.inv.Lines)
	if v.Customer.MagentoID > 0 {
		if c, ok := s.customerViewLocked(v.Customer.MagentoID); ok {
			c.Company = rec.inv.Customer.Company // from the order's billing address only
			v.Customer = c
		}
		v.Customer.Addresses = slices.Clone(v.Customer.Addresses)
		hasKind := func(kind string) bool {
			return slices.ContainsFunc(v.Customer.Addresses, func(a magento.Address) bool { return a.Kind == kind })
		}
		if a := v.BillingAddress; a != nil && !hasKind("billing") {
			v.Customer.Addresses = append(v.Customer.Addresses, *a)
		}
		if a := v.ShippingAddress; a != nil && !hasKind("shipping") {
			v.Customer.Addresses = append(v.Customer.Addresses, *a)
		}
	}
	return v, true
}

// Payment returns the canonical payment of an invoice; ok is false when the
// invoice does not exist, hasPayment false when its order has no payment.
func (s *Shop) Payment(invoiceID int64) (p magento.Payment, ok, hasPayment bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.invoices[invoiceID]
	if !ok {
		return magento.Payment{}, false, false
	}
	if rec.inv.PaymentMethod == "" {
		return magento.Payment{}, true, false
	}
	md := slices.Clone(rec.metadata)
	if md == nil {
		md = []string{}
	}
	return magento.Payment{
		MagentoID: rec.inv.MagentoID, InvoiceID: rec.inv.MagentoID, InvoiceIncrementID: rec.inv.IncrementID,
		Method: rec.inv.PaymentMethod, Currency: rec.inv.Currency, Amount: rec.inv.GrandTotal,
		CapturedAt: rec.inv.CreatedAt, GatewayTxnID: rec.txnID, GatewayMetadata: md,
	}, true, true
}

// paymentDetails invents the order payment's last_trans_id and re-indexed
// additional_information for a method, deterministically from the increment id.
func paymentDetails(method, incrementID string) (string, []string) {
	sum := sha1.Sum([]byte(method + incrementID))
	h := hex.EncodeToString(sum[:])
	switch method {
	case "":
		return "", nil
	case "stripe_payments":
		return "ch_3" + h[:20], []string{"pi_3" + h[20:38], `{"brand":"visa","last4":"4242"}`, "card"}
	case "paypal_express":
		return "PAYID-" + h[:18], []string{"payer_" + h[:6] + "@example.com", "verified", "1"}
	case "checkmo":
		return "", []string{"Check / Money order"}
	case "banktransfer":
		return "", []string{"Bank Transfer Payment"}
	case "purchaseorder":
		return "", []string{"Purchase Order"}
	default:
		return "", []string{}
	}
}

// CreateCreditMemo refunds an invoice in full (lines, shipping and tax copied,
// no adjustments) and, when connected, enqueues creditmemo.created:{id} with
// payload {"increment_id"}.
func (s *Shop) CreateCreditMemo(invoiceID int64, reason string) (CreditMemo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.invoiceViewLocked(invoiceID)
	if !ok {
		return CreditMemo{}, fmt.Errorf("invoice %d: %w", invoiceID, ErrNotFound)
	}
	s.nextCreditMemoID++
	id := s.nextCreditMemoID
	cust := s.invoices[invoiceID].inv.Customer
	if c, ok := s.customerViewLocked(cust.MagentoID); ok && cust.MagentoID > 0 {
		cust = c
	}
	iid := inv.MagentoID
	cm := CreditMemo{
		MagentoID: id, IncrementID: fmt.Sprintf("%09d", id), InvoiceID: &iid, InvoiceIncrementID: inv.IncrementID,
		WebsiteID: inv.WebsiteID, Currency: inv.Currency, Customer: cust, Lines: slices.Clone(inv.Lines),
		GrandTotal: inv.GrandTotal, ShippingAmount: inv.ShippingAmount, ShippingTaxAmount: inv.ShippingTaxAmount,
		Reason: reason, CreatedAt: s.now().Format(timeLayout), InvoiceCreatedAt: inv.CreatedAt,
		BaseToOrderRate: inv.BaseToOrderRate,
	}
	s.creditMemos[id] = &cm
	s.observeLocked(Event{
		Name: "creditmemo.created", IdempotencyKey: fmt.Sprintf("creditmemo.created:%d", id),
		MagentoEntityID: id, WebsiteID: cm.WebsiteID, StoreID: inv.StoreID,
		Payload: incrementPayload{IncrementID: cm.IncrementID},
	})
	return cm, nil
}

// CreditMemoByID returns a credit memo.
func (s *Shop) CreditMemoByID(id int64) (CreditMemo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cm, ok := s.creditMemos[id]
	if !ok {
		return CreditMemo{}, false
	}
	return *cm, true
}
