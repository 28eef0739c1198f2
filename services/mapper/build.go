package mapper

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/policy"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/mapper/quirks"
)

// Limits of Sage fields the mapper fills (sage-v3.1 §4.1, §4.2).
const (
	MaxContactName      = 100
	MaxInvoiceReference = 25
)

// Operation keys and xref kinds of the writes the mapper emits.
const (
	KeyContact  = "contact"
	KeyInvoice  = "invoice"
	XrefContact = "contact"
	XrefInvoice = "invoice"
)

// Builder turns canonical Magento documents into SageWrites for one tenant. It
// is pure: the same inputs always give the same write, byte for byte, so a
// replay never duplicates anything in Sage.
type Builder struct {
	TenantID     string
	Policy       policy.Policy
	BaseCurrency string
}

// IdempotencyID is the deterministic Sage idempotency_id of an operation: the
// first 32 hex characters of SHA-256 over tenant|resource|xref kind|xref
// key|currency, where resource is Sage's root key ("contact", "sales_invoice").
func IdempotencyID(tenantID, resource, xrefKind, xrefKey, currency string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{tenantID, resource, xrefKind, xrefKey, currency}, "|")))
	return hex.EncodeToString(sum[:])[:32]
}

// applied collects the quirk rules that shaped a write.
type applied map[string]bool

func (a applied) list() []string {
	var out []string
	for _, n := range quirks.Order {
		if a[n] {
			out = append(out, n)
		}
	}
	return out
}

// Invoice builds the write for invoice.created: ensure the contact (in the
// invoice's currency), then the sales invoice bound to it. A *Failure says why
// the invoice cannot be sent as it is.
func (b Builder) Invoice(inv magento.Invoice) (*ledgerv1.SageWrite, error) {
	if b.Policy.DefaultLedgerAccountID == "" {
		return nil, failf(ClassValidation, CodeRefCacheStale,
			"default_ledger_account_id is not set: connect Sage or set it in the tenant policy")
	}
	q := applied{}
	currency := quirks.ContactCurrency(inv.Currency, b.BaseCurrency)

	// The contact, with the invoice's (order-enriched) addresses.
	billing, shipping := inv.BillingAddress, inv.ShippingAddress
	if billing == nil && shipping == nil {
		billing, shipping = quirks.ContactAddresses(inv.Customer)
	}
	contactOp, err := b.contactOperation(inv.Customer, currency, billing, shipping, q)
	if err != nil {
		return nil, err
	}

	date, err := sageDate(inv.CreatedAt)
	if err != nil {
		return nil, failf(ClassSerde, CodeResponseInvalid, "invoice %d: created_at %q is not a date: %v", inv.MagentoID, inv.CreatedAt, err)
	}
	ref := invoiceReference(b.Policy.InvoiceNumberPrefix, inv.IncrementID)
	if utf8.RuneCountInString(ref) > MaxInvoiceReference {
		return nil, failf(ClassValidation, CodeReferenceTooLong,
			"invoice %d: reference %q is over Sage's %d characters: shorten invoice_number_prefix in the tenant policy",
			inv.MagentoID, ref, MaxInvoiceReference)
	}

	body := SageInvoice{
		Date:         date,
		Reference:    ref,
		CurrencyID:   currency,
		ExchangeRate: money.Number{Amount: money.FromDecimal(quirks.ExchangeRate(inv.BaseToOrderRate))},
	}
	q[quirks.NameExchangeRate] = true
	main, delivery := quirks.Addresses(billing, shipping)
	body.MainAddress, body.DeliveryAddress = sageAddress(main), sageAddress(delivery)
	q[quirks.NameAddresses] = true

	lineTotals := money.Zero
	for _, l := range inv.Lines {
		if isEmptyLine(l) && len(inv.Lines) > 1 {
			continue // a configurable or bundle child: its parent carries the amounts (wire §9.4)
		}
		line := b.invoiceLine(l, q)
		body.InvoiceLines = append(body.InvoiceLines, line)
		body.NetAmount = body.NetAmount.Add(line.NetAmount)
		body.TaxAmount = body.TaxAmount.Add(line.TaxAmount)
		lineTotals = lineTotals.Add(line.TotalAmount)
	}
	if len(body.InvoiceLines) == 0 {
		return nil, failf(ClassValidation, CodeNoLines, "invoice %s (%d) has no lines to send", inv.IncrementID, inv.MagentoID)
	}

	body.ShippingNetAmount = inv.ShippingAmount.Cents()
	body.ShippingTaxAmount = inv.ShippingTaxAmount.Cents()
	rateID, zero := quirks.ShippingTaxRate(body.ShippingTaxAmount, b.Policy.ZeroTaxRateID,
		b.taxRateID(body.ShippingTaxAmount, body.ShippingNetAmount))
	body.ShippingTaxRateID = rateID
	q[quirks.NameShippingZeroRate] = zero
	body.NetAmount = body.NetAmount.Add(body.ShippingNetAmount)
	body.TaxAmount = body.TaxAmount.Add(body.ShippingTaxAmount)
	body.TotalAmount = body.NetAmount.Add(body.TaxAmount)

	// Invariant: what Sage books equals what the shop charged, to the penny.
	sum := money.Sum(lineTotals, body.ShippingNetAmount, body.ShippingTaxAmount)
	if grand := inv.GrandTotal.Cents(); !sum.Equal(grand) {
		return nil, failf(ClassValidation, CodeTotalsMismatch,
			"invoice %s (%d): lines + shipping come to %s %s but Magento's grand_total is %s %s",
			inv.IncrementID, inv.MagentoID, sum, currency, grand, currency)
	}

	invKey := strconv.FormatInt(inv.MagentoID, 10)
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, failf(ClassInternal, "payload_encoding", "invoice %d: %v", inv.MagentoID, err)
	}
	invoiceOp := &ledgerv1.SageOperation{
		Key: KeyInvoice, Resource: ledgerv1.SageResource_SAGE_RESOURCE_SALES_INVOICE,
		XrefKind: XrefInvoice, XrefKey: invKey, Currency: currency, Reference: ref,
		IdempotencyId: IdempotencyID(b.TenantID, "sales_invoice", XrefInvoice, invKey, currency),
		Body:          raw,
		Bindings:      []*ledgerv1.FieldBinding{{Field: "contact_id", FromKey: KeyContact}},
	}
	return &ledgerv1.SageWrite{
		TenantId: b.TenantID, EntityType: "invoice", MagentoEntityId: inv.MagentoID,
		Operations: []*ledgerv1.SageOperation{contactOp, invoiceOp}, ResultKey: KeyInvoice,
		AppliedQuirks: q.list(),
	}, nil
}

// Contact builds the write for customer.upserted: one contact in the business's
// base currency, with the profile's default addresses.
func (b Builder) Contact(c magento.Contact) (*ledgerv1.SageWrite, error) {
	q := applied{}
	currency := quirks.ContactCurrency(b.BaseCurrency, b.BaseCurrency)
	billing, shipping := quirks.ContactAddresses(c)
	op, err := b.contactOperation(c, currency, billing, shipping, q)
	if err != nil {
		return nil, err
	}
	return &ledgerv1.SageWrite{
		TenantId: b.TenantID, EntityType: "customer", MagentoEntityId: c.MagentoID,
		Operations: []*ledgerv1.SageOperation{op}, ResultKey: KeyContact, AppliedQuirks: q.list(),
	}, nil
}

func (b Builder) contactOperation(c magento.Contact, currency string, billing, shipping *magento.Address, q applied) (*ledgerv1.SageOperation, error) {
	ref := quirks.ContactReference(c.MagentoID, c.Email, currency, b.BaseCurrency)
	q[quirks.NameContactReference] = true
	q[quirks.NameContactCurrency] = true
	name := b.contactName(c)
	if name == "" {
		name = ref
	}
	phone := c.Phone
	if phone == "" && billing != nil {
		phone = billing.Telephone
	}
	body := SageContact{
		Name: name, ContactTypeIDs: []string{"CUSTOMER"}, Reference: ref, CurrencyID: currency,
		Email: strings.TrimSpace(c.Email),
		MainContactPerson: &SageContactPerson{
			Name: name, Email: strings.TrimSpace(c.Email), Telephone: strings.TrimSpace(phone), IsMainContact: true,
		},
	}
	main, delivery := quirks.Addresses(billing, shipping)
	body.MainAddress, body.DeliveryAddress = sageAddress(main), sageAddress(delivery)
	q[quirks.NameAddresses] = true
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, failf(ClassInternal, "payload_encoding", "contact %s: %v", ref, err)
	}
	return &ledgerv1.SageOperation{
		Key: KeyContact, Resource: ledgerv1.SageResource_SAGE_RESOURCE_CONTACT,
		XrefKind: XrefContact, XrefKey: ref, Currency: currency, Reference: ref,
		IdempotencyId: IdempotencyID(b.TenantID, "contact", XrefContact, ref, currency),
		Body:          raw,
	}, nil
}

// contactName follows the policy's customer_name_priority (company,
// full_name, email), cleaned like a description and cut to Sage's 100.
func (b Builder) contactName(c magento.Contact) string {
	order := b.Policy.CustomerNamePriority
	if len(order) == 0 {
		order = policy.Default().CustomerNamePriority
	}
	for _, src := range order {
		var v string
		switch src {
		case "company":
			v = c.Company
		case "full_name":
			v = strings.TrimSpace(c.FirstName + " " + c.LastName)
		case "email":
			v = c.Email
		}
		if v = quirks.CleanText(v, MaxContactName); v != "" {
			return v
		}
	}
	return ""
}

func (b Builder) invoiceLine(l magento.InvoiceLine, q applied) SageInvoiceLine {
	subtotal := l.LineSubtotal.Cents()
	tax := quirks.LineTax(l.LineTax.Amount)
	q[quirks.NameLineTax] = true
	desc, changed := quirks.Description(l.Name, l.SKU)
	if changed {
		q[quirks.NameDescription] = true
	}
	line := SageInvoiceLine{
		Description:       desc,
		LedgerAccountID:   b.Policy.DefaultLedgerAccountID,
		Quantity:          l.Qty,
		UnitPrice:         l.UnitPrice,
		NetAmount:         subtotal,
		TaxAmount:         tax.TaxAmount,
		CurrencyTaxAmount: tax.CurrencyTaxAmount,
	}
	// Magento folds an item's discount into line_total only (wire §4.4).
	if discount := subtotal.Add(tax.TaxAmount).Sub(l.LineTotal.Cents()); discount.Sign() > 0 {
		line.DiscountAmount = &discount
		line.NetAmount = subtotal.Sub(discount)
	}
	line.TotalAmount = line.NetAmount.Add(line.TaxAmount)
	line.TaxRateID = b.lineTaxRateID(l, line.NetAmount, tax.TaxAmount)
	return line
}

// lineTaxRateID maps a line's applied percentage to a Sage tax rate: the
// ratio Magento sent, else tax ÷ subtotal, else tax ÷ discounted net (Magento's
// ratio understates the rate when the discount is applied before tax). A line
// without tax takes the zero rate; an unmapped percentage the default rate.
func (b Builder) lineTaxRateID(l magento.InvoiceLine, net, tax money.Amount) string {
	if tax.IsZero() {
		return b.Policy.ZeroTaxRateID
	}
	var candidates []string
	if l.TaxRate != nil && l.TaxRate.Sign() > 0 {
		candidates = append(candidates, percent(l.TaxRate.Decimal().Mul(decimal.NewFromInt(100))))
	}
	candidates = append(candidates, ratioPercent(tax, l.LineSubtotal.Cents()), ratioPercent(tax, net))
	for _, pct := range candidates {
		if id, ok := b.Policy.TaxRateMap[pct]; ok && pct != "" {
			return id
		}
	}
	return b.Policy.DefaultTaxRateID
}

// taxRateID maps tax ÷ net to a Sage rate, the default when unmapped.
func (b Builder) taxRateID(tax, net money.Amount) string {
	if tax.IsZero() {
		return b.Policy.ZeroTaxRateID
	}
	if id, ok := b.Policy.TaxRateMap[ratioPercent(tax, net)]; ok {
		return id
	}
	return b.Policy.DefaultTaxRateID
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

// invoiceReference puts the policy's prefix in front of the increment id,
// never twice.
func invoiceReference(prefix, incrementID string) string {
	incrementID = strings.TrimSpace(incrementID)
	if prefix == "" || strings.HasPrefix(incrementID, prefix) {
		return incrementID
	}
	return prefix + incrementID
}

// sageDate turns Magento's UTC timestamp into Sage's YYYY-MM-DD.
func sageDate(ts string) (string, error) {
	for _, layout := range []string{time.RFC3339, magento.MySQLTimestamp, time.DateOnly} {
		if t, err := time.Parse(layout, strings.TrimSpace(ts)); err == nil {
			return t.UTC().Format(time.DateOnly), nil
		}
	}
	return "", fmt.Errorf("want YYYY-MM-DDTHH:MM:SSZ")
}

func sageAddress(a *magento.Address) *SageAddress {
	if a == nil {
		return nil
	}
	var street []string
	for _, s := range a.Street {
		if s = quirks.CleanText(s, 0); s != "" {
			street = append(street, s)
		}
	}
	out := &SageAddress{
		City: quirks.CleanText(a.City, 0), Region: quirks.CleanText(a.Region, 0),
		PostalCode: strings.TrimSpace(a.Postcode), CountryID: strings.ToUpper(strings.TrimSpace(a.CountryID)),
	}
	if len(street) > 0 {
		out.AddressLine1 = street[0]
		out.AddressLine2 = strings.Join(slices.Clip(street[1:]), ", ")
	}
	return out
}
