package mapper

import (
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/policy"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/mapper/quirks"
)

// Invoice builds the write for invoice.created: ensure the contact (in the
// invoice's currency), then the sales invoice bound to it. A *Failure says why
// the invoice cannot be sent as it is.
func (b Builder) Invoice(ctx context.Context, inv Invoice) (*ledgerv1.SageWrite, error) {
	m := b.start()
	if _, err := m.ensureInvoice(ctx, inv); err != nil {
		return nil, err
	}
	return m.write("invoice", inv.MagentoID, KeyInvoice)
}

// ensureInvoice adds the contact and invoice operations of inv (the same
// operations, keys and idempotency ids whichever event ensures them) and
// returns the chosen contact.
func (m *mapping) ensureInvoice(ctx context.Context, inv Invoice) (contactChoice, error) {
	currency := quirks.ContactCurrency(inv.Currency, m.b.BaseCurrency)
	billing, shipping := invoiceAddresses(inv.Invoice)
	invKey := strconv.FormatInt(inv.MagentoID, 10)
	ch, err := m.chooseContact(ctx, inv.Customer, currency, invKey, inv.GrandTotal.Amount, country(billing))
	if err != nil {
		return ch, err
	}
	contactOp, err := m.contactOperation(KeyContact, inv.Customer, ch, billing, shipping)
	if err != nil {
		return ch, err
	}
	m.add(contactOp)

	date, err := sageDate(inv.CreatedAt)
	if err != nil {
		return ch, failf(ClassSerde, CodeResponseInvalid, "invoice %d: created_at %q is not a date: %v", inv.MagentoID, inv.CreatedAt, err)
	}
	ref := documentReference(m.b.Policy.InvoiceNumberPrefix, inv.IncrementID)
	if utf8.RuneCountInString(ref) > MaxInvoiceReference {
		return ch, failf(ClassValidation, CodeReferenceTooLong,
			"invoice %d: reference %q is over Sage's %d characters: shorten invoice_number_prefix in the tenant policy",
			inv.MagentoID, ref, MaxInvoiceReference)
	}
	if len(inv.Lines) == 0 {
		return ch, failf(ClassValidation, CodeNoLines, "invoice %s (%d) has no lines to send", inv.IncrementID, inv.MagentoID)
	}

	cross := quirks.CrossBorder(country(billing), m.b.Policy.HomeCountry)
	d := m.newSalesDoc(cross)
	m.addItems(d, inv.Lines)
	if a := inv.GiftCardsAmount; a != nil && !a.IsZero() {
		m.addExtra(d, DescGiftCard, "gift_card_ledger_account_id", m.b.Policy.GiftCardLedgerAccountID, a.Abs().Cents().Neg(), money.Zero, "")
	}
	if a := inv.CustomerBalanceAmount; a != nil && !a.IsZero() {
		m.addExtra(d, DescStoreCredit, "store_credit_ledger_account_id", m.b.Policy.StoreCreditLedgerAccountID, a.Abs().Cents().Neg(), money.Zero, "")
	}
	m.setShipping(d, inv.ShippingAmount.Amount, inv.ShippingTaxAmount.Amount, m.ratePercentages())
	m.finishTax(d)
	shortfall, err := m.reconcile(d, inv.GrandTotal.Amount, inv.DiscountAmount.Amount, true,
		"invoice "+inv.IncrementID+" ("+invKey+")")
	if err != nil {
		return ch, err
	}
	m.finishEU(d)

	rate, err := exchangeRate(inv.BaseToOrderRate)
	if err != nil {
		return ch, failf(ClassSerde, CodeResponseInvalid, "invoice %d: %v", inv.MagentoID, err)
	}
	body := SageInvoice{
		Date: date, Reference: ref, CurrencyID: currency, ExchangeRate: rate,
		InvoiceLines: d.lines, ShippingNetAmount: d.shipNet, ShippingTaxRateID: d.shipRate, ShippingTaxAmount: d.shipTax,
	}
	m.q[quirks.NameExchangeRate] = true
	main, delivery := quirks.Addresses(billing, shipping)
	body.MainAddress, body.DeliveryAddress = sageAddress(main), sageAddress(delivery)
	m.q[quirks.NameAddresses] = true
	body.NetAmount, body.TaxAmount, body.TotalAmount = d.header()
	// Invariant: what Sage books equals what the shop charged, to the penny
	// (with an unitemised credit, what the customer paid plus the credit).
	if grand := inv.GrandTotal.Cents(); !body.TotalAmount.Equal(grand.Add(shortfall)) {
		return ch, failf(ClassValidation, CodeTotalsMismatch, "invoice %s (%d): Sage total %s is not Magento's grand_total %s plus the unitemised credit %s",
			inv.IncrementID, inv.MagentoID, body.TotalAmount, grand, shortfall)
	}
	op, err := m.operation(KeyInvoice, ledgerv1.SageResource_SAGE_RESOURCE_SALES_INVOICE, "sales_invoice",
		XrefInvoice, invKey, currency, ref, body, bind("contact_id", KeyContact))
	if err != nil {
		return ch, err
	}
	m.add(op)
	if shortfall.Sign() > 0 {
		return ch, m.addUnitemisedCredit(inv, currency, date, ref, shortfall)
	}
	return ch, nil
}

// addUnitemisedCredit receives the shortfall of an invoice booked at its full
// value from the tenant's clearing account (policy unitemised_credit), as a
// CUSTOMER_RECEIPT allocated to the invoice: the invoice then has outstanding
// exactly what the customer pays (invoice.paid settles it). Its reference is
// the invoice's with "-CR", so a lookup never confuses it with the payment.
func (m *mapping) addUnitemisedCredit(inv Invoice, currency, date, ref string, shortfall money.Amount) error {
	body := SageContactPayment{
		TransactionTypeID: "CUSTOMER_RECEIPT",
		BankAccountID:     m.use("unitemised_credit.bank_account_id", policy.RefBankAccounts, m.b.Policy.UnitemisedCredit.BankAccountID),
		Date:              date, TotalAmount: shortfall, CurrencyID: currency,
		ExchangeRate:       money.Number{Amount: money.FromDecimal(quirks.ExchangeRate(inv.BaseToOrderRate))},
		Reference:          truncate(ref, MaxPaymentReference-len(CreditReferenceSuffix)) + CreditReferenceSuffix,
		AllocatedArtefacts: []SageAllocatedArtefact{{Amount: shortfall}},
	}
	op, err := m.operation(KeyUnitemisedCredit, ledgerv1.SageResource_SAGE_RESOURCE_CONTACT_PAYMENT, "contact_payment",
		XrefUnitemisedCredit, strconv.FormatInt(inv.MagentoID, 10), currency, body.Reference, body,
		bind("contact_id", KeyContact), bind("allocated_artefacts.0.artefact_id", KeyInvoice))
	if err != nil {
		return err
	}
	op.SettlesKey = KeyInvoice
	m.add(op)
	return nil
}

// Payment builds the write for invoice.paid: ensure the contact and the
// invoice (the same operations as invoice.created), then one CUSTOMER_RECEIPT
// in the invoice's currency and exchange rate, on the bank account of the
// payment method, allocated to the invoice in the same call. An unmapped
// method is a *Skip (payment_method_not_mapped): the invoice stays unpaid.
func (b Builder) Payment(ctx context.Context, inv Invoice, pay Payment) (*ledgerv1.SageWrite, error) {
	m := b.start()
	if err := m.ensurePayment(ctx, inv, pay); err != nil {
		return nil, err
	}
	return m.write("invoice", inv.MagentoID, KeyInvoice)
}

func (m *mapping) ensurePayment(ctx context.Context, inv Invoice, pay Payment) error {
	method := strings.TrimSpace(pay.Method)
	if method == "" {
		method = inv.PaymentMethod
	}
	bank, ok := m.b.Policy.BankAccount(method)
	if !ok {
		return skipf(SkipPaymentMethodNotMapped,
			"payment method %q of invoice %s has no Sage bank account: map it in payment_method_map (or set default_bank_account_id) and retry; the invoice stays unpaid in Sage",
			method, inv.IncrementID)
	}
	amount := pay.Amount.Cents()
	if amount.IsZero() {
		amount = inv.GrandTotal.Cents()
	}
	if amount.Sign() <= 0 {
		return skipf(SkipZeroValueInvoice, "invoice %s has nothing to pay (amount %s)", inv.IncrementID, amount)
	}
	if _, err := m.ensureInvoice(ctx, inv); err != nil {
		return err
	}
	currency := quirks.ContactCurrency(inv.Currency, m.b.BaseCurrency)
	date, err := sageDate(pay.CapturedAt)
	if err != nil {
		if date, err = sageDate(inv.CreatedAt); err != nil {
			return failf(ClassSerde, CodeResponseInvalid, "payment of invoice %d: captured_at %q is not a date", inv.MagentoID, pay.CapturedAt)
		}
	}
	field := "default_bank_account_id"
	if _, listed := m.b.Policy.PaymentMethodMap[method]; listed {
		field = `payment_method_map["` + method + `"]`
	}
	body := SageContactPayment{
		TransactionTypeID: "CUSTOMER_RECEIPT",
		BankAccountID:     m.use(field, policy.RefBankAccounts, bank),
		Date:              date, TotalAmount: amount, CurrencyID: currency,
		ExchangeRate: money.Number{Amount: money.FromDecimal(quirks.ExchangeRate(inv.BaseToOrderRate))},
		Reference:    truncate(documentReference(m.b.Policy.InvoiceNumberPrefix, inv.IncrementID), MaxPaymentReference),
		// The receipt settles the invoice up to its total; the writer binds
		// the artefact id from the invoice operation.
		AllocatedArtefacts: []SageAllocatedArtefact{{Amount: minAmount(amount, inv.GrandTotal.Cents())}},
	}
	if pm := m.b.Policy.SagePaymentMethod(method); pm != "" {
		f := "default_sage_payment_method_id"
		if _, listed := m.b.Policy.SagePaymentMethodMap[method]; listed {
			f = `sage_payment_method_map["` + method + `"]`
		}
		body.PaymentMethodID = m.use(f, policy.RefPaymentMethods, pm)
	}
	invKey := strconv.FormatInt(inv.MagentoID, 10)
	op, err := m.operation(KeyPayment, ledgerv1.SageResource_SAGE_RESOURCE_CONTACT_PAYMENT, "contact_payment",
		XrefPayment, invKey, currency, body.Reference, body,
		bind("contact_id", KeyContact), bind("allocated_artefacts.0.artefact_id", KeyInvoice))
	if err != nil {
		return err
	}
	// Magento's amount is the invoice's grand_total, but a credit note set
	// against the open invoice first leaves less to pay: the writer pays
	// what the invoice has outstanding.
	op.SettlesKey = KeyInvoice
	m.add(op)
	return nil
}

// CreditMemo builds the write for creditmemo.created. The credit note goes on
// the same contact as the invoice it credits (B2C consolidation included),
// which is ensured first with the invoice itself; shipping refunds are a line
// on the carriage account, adjustments lines on the adjustments account. Then
// either the credit note is set against the invoice while the invoice is
// outstanding in Sage (contact_allocation), or, when the invoice was paid in
// Sage (Magento says paid and its method has a bank account), the receipt is
// ensured and the money that went back is a CUSTOMER_REFUND allocated to the
// credit note. inv is nil for a refund made against the order.
func (b Builder) CreditMemo(ctx context.Context, cm CreditMemo, inv *Invoice) (*ledgerv1.SageWrite, error) {
	m := b.start()
	currency := quirks.ContactCurrency(cm.Currency, m.b.BaseCurrency)
	var billing, shipping *magento.Address
	var err error
	paidInSage := false
	var bank string
	if inv != nil {
		if _, err = m.ensureInvoice(ctx, *inv); err != nil {
			return nil, err
		}
		billing, shipping = invoiceAddresses(inv.Invoice)
		if inv.State == "paid" && inv.GrandTotal.Sign() > 0 {
			if bank, paidInSage = m.b.Policy.BankAccount(inv.PaymentMethod); paidInSage {
				pay := Payment{Method: inv.PaymentMethod, Amount: inv.GrandTotal, CapturedAt: inv.CreatedAt}
				if err := m.ensurePayment(ctx, *inv, pay); err != nil {
					return nil, err
				}
			}
		}
	} else {
		billing, shipping = quirks.ContactAddresses(cm.Customer)
		ch, err := m.chooseContact(ctx, cm.Customer, currency, "", cm.GrandTotal.Amount, country(billing))
		if err != nil {
			return nil, err
		}
		op, err := m.contactOperation(KeyContact, cm.Customer, ch, billing, shipping)
		if err != nil {
			return nil, err
		}
		m.add(op)
	}

	date, err := sageDate(cm.CreatedAt)
	if err != nil {
		return nil, failf(ClassSerde, CodeResponseInvalid, "credit memo %d: created_at %q is not a date", cm.MagentoID, cm.CreatedAt)
	}
	ref := documentReference(m.b.Policy.InvoiceNumberPrefix, cm.IncrementID)
	if utf8.RuneCountInString(ref) > MaxInvoiceReference {
		return nil, failf(ClassValidation, CodeReferenceTooLong,
			"credit memo %d: reference %q is over Sage's %d characters: shorten invoice_number_prefix in the tenant policy",
			cm.MagentoID, ref, MaxInvoiceReference)
	}
	cross := quirks.CrossBorder(country(billing), m.b.Policy.HomeCountry)
	d := m.newSalesDoc(cross)
	m.addItems(d, cm.Lines)
	if net, tax := cm.ShippingAmount.Cents(), cm.ShippingTaxAmount.Cents(); !net.IsZero() || !tax.IsZero() {
		// A line, not header shipping: Sage keeps line tax as sent and recomputes
		// only header shipping tax (quirk 32).
		m.addExtra(d, DescShippingRefund, "carriage_ledger_account_id", m.b.Policy.CarriageLedgerAccountID, net, tax, "")
	}
	if a := cm.AdjustmentPositive.Cents(); a.Sign() > 0 {
		m.addExtra(d, DescAdjustRefund, "adjustments_ledger_account_id", m.b.Policy.AdjustmentsLedgerAccountID, a, money.Zero, "")
	}
	if a := cm.AdjustmentNegative.Cents(); a.Sign() > 0 {
		m.addExtra(d, DescAdjustFee, "adjustments_ledger_account_id", m.b.Policy.AdjustmentsLedgerAccountID, a.Neg(), money.Zero, "")
	}
	if len(d.lines) == 0 {
		return nil, failf(ClassValidation, CodeNoLines, "credit memo %s (%d) has no lines to send", cm.IncrementID, cm.MagentoID)
	}
	m.finishTax(d)
	if _, err := m.reconcile(d, cm.GrandTotal.Amount, money.Zero, false, "credit memo "+cm.IncrementID); err != nil {
		return nil, err
	}
	m.finishEU(d)
	rate, err := exchangeRate(cm.BaseToOrderRate)
	if err != nil {
		return nil, failf(ClassSerde, CodeResponseInvalid, "credit memo %d: %v", cm.MagentoID, err)
	}
	body := SageCreditNote{
		Date: date, Reference: ref, CurrencyID: currency, Notes: quirks.CleanText(cm.Reason, 2000),
		ExchangeRate: rate, CreditNoteLines: d.lines,
	}
	m.q[quirks.NameExchangeRate] = true
	origin := cm.InvoiceCreatedAt
	if inv != nil && inv.CreatedAt != "" {
		origin = inv.CreatedAt
	}
	if origin != "" {
		if od, err := sageDate(origin); err == nil {
			body.OriginalInvoiceDate = od
		}
	}
	main, delivery := quirks.Addresses(billing, shipping)
	body.MainAddress, body.DeliveryAddress = sageAddress(main), sageAddress(delivery)
	m.q[quirks.NameAddresses] = true
	body.NetAmount, body.TaxAmount, body.TotalAmount = d.header()
	if grand := cm.GrandTotal.Cents(); !body.TotalAmount.Equal(grand) {
		return nil, failf(ClassValidation, CodeTotalsMismatch, "credit memo %s: Sage total %s is not Magento's grand_total %s",
			cm.IncrementID, body.TotalAmount, grand)
	}
	cmKey := strconv.FormatInt(cm.MagentoID, 10)
	op, err := m.operation(KeyCreditNote, ledgerv1.SageResource_SAGE_RESOURCE_SALES_CREDIT_NOTE, "sales_credit_note",
		XrefCreditNote, cmKey, currency, ref, body, bind("contact_id", KeyContact))
	if err != nil {
		return nil, err
	}
	m.add(op)

	total := body.TotalAmount
	switch {
	case total.Sign() <= 0 || inv == nil:
		// Nothing to settle, or no invoice to settle against.
	case paidInSage:
		field := "default_bank_account_id"
		if _, listed := m.b.Policy.PaymentMethodMap[inv.PaymentMethod]; listed {
			field = `payment_method_map["` + inv.PaymentMethod + `"]`
		}
		refund := SageContactPayment{
			TransactionTypeID: "CUSTOMER_REFUND", BankAccountID: m.use(field, policy.RefBankAccounts, bank),
			Date: date, TotalAmount: total, CurrencyID: currency, ExchangeRate: body.ExchangeRate,
			Reference:          truncate(ref, MaxPaymentReference),
			AllocatedArtefacts: []SageAllocatedArtefact{{Amount: total}},
		}
		if pm := m.b.Policy.SagePaymentMethod(inv.PaymentMethod); pm != "" {
			refund.PaymentMethodID = pm
		}
		op, err := m.operation(KeyRefund, ledgerv1.SageResource_SAGE_RESOURCE_CONTACT_PAYMENT, "contact_payment",
			XrefRefund, cmKey, currency, refund.Reference, refund,
			bind("contact_id", KeyContact), bind("allocated_artefacts.0.artefact_id", KeyCreditNote))
		if err != nil {
			return nil, err
		}
		m.add(op)
	default:
		amount := minAmount(total, inv.GrandTotal.Cents())
		if amount.Sign() <= 0 {
			break
		}
		alloc := SageContactAllocation{TransactionTypeID: "CUSTOMER_ALLOCATION", Date: date,
			AllocatedArtefacts: []SageAllocatedArtefact{{Amount: amount}, {Amount: amount.Neg()}}}
		op, err := m.operation(KeyAllocation, ledgerv1.SageResource_SAGE_RESOURCE_CONTACT_ALLOCATION, "contact_allocation",
			XrefAllocation, cmKey, currency, "", alloc, bind("contact_id", KeyContact),
			bind("allocated_artefacts.0.artefact_id", KeyInvoice), bind("allocated_artefacts.1.artefact_id", KeyCreditNote))
		if err != nil {
			return nil, err
		}
		m.add(op)
	}
	return m.write("creditmemo", cm.MagentoID, KeyCreditNote)
}

// Customer builds the write for customer.upserted: the contact in the
// business's base currency, plus every other currency variant that already
// exists in Sage (entity_xref), each with the profile's current details.
func (b Builder) Customer(ctx context.Context, c magento.Contact) (*ledgerv1.SageWrite, error) {
	m := b.start()
	billing, shipping := quirks.ContactAddresses(c)
	currencies := []string{quirks.ContactCurrency(m.b.BaseCurrency, m.b.BaseCurrency)}
	identity := Identity(c)
	// Which currency variants exist, in one read.
	var variants []store.XrefKey
	for _, cur := range quirks.TradingCurrencies() {
		if !strings.EqualFold(cur, m.b.BaseCurrency) {
			variants = append(variants, store.XrefKey{Kind: XrefContact, MagentoKey: identity, Currency: cur})
		}
	}
	if err := m.b.Dir.Prefetch(ctx, variants); err != nil {
		return nil, storeTrouble(err)
	}
	for _, cur := range quirks.TradingCurrencies() {
		if strings.EqualFold(cur, m.b.BaseCurrency) {
			continue
		}
		ok, err := m.b.Dir.ContactExists(ctx, identity, cur)
		if err != nil {
			return nil, storeTrouble(err)
		}
		if ok {
			currencies = append(currencies, cur)
		}
	}
	for i, cur := range currencies {
		ch, err := m.chooseContact(ctx, c, cur, "", money.Zero, country(billing))
		if err != nil {
			return nil, err
		}
		key := KeyContact
		if i > 0 {
			key = KeyContact + "_" + cur
		}
		op, err := m.contactOperation(key, c, ch, billing, shipping)
		if err != nil {
			return nil, err
		}
		m.add(op)
	}
	return m.write("customer", c.MagentoID, KeyContact)
}

// Product builds the write for product.upserted (when sync_products is on): a
// Sage product for a simple product, a service for a virtual or downloadable
// one. Composite types are skipped (product_type_not_supported): their
// children are the items that sell.
func (b Builder) Product(_ context.Context, p Product) (*ledgerv1.SageWrite, error) {
	m := b.start()
	typ := strings.ToLower(strings.TrimSpace(p.ProductType))
	var key, xref, root string
	var res ledgerv1.SageResource
	switch typ {
	case "simple", "":
		key, xref, root, res = KeyProduct, XrefProduct, "product", ledgerv1.SageResource_SAGE_RESOURCE_PRODUCT
	case "virtual", "downloadable":
		key, xref, root, res = KeyService, XrefService, "service", ledgerv1.SageResource_SAGE_RESOURCE_SERVICE
	default:
		return nil, skipf(SkipProductTypeNotSupported, "product %s is a %s product; Sage gets its simple, virtual and downloadable products only", p.SKU, typ)
	}
	desc, changed := quirks.Description(p.Name, p.SKU)
	if changed {
		m.q[quirks.NameDescription] = true
	}
	item := SageCatalogItem{
		ItemCode: strings.TrimSpace(p.SKU), Description: desc,
		SalesLedgerAccountID: m.ledger("default_ledger_account_id", ""),
		SourceGUID:           "magento:product:" + strconv.FormatInt(p.MagentoID, 10),
	}
	if p.Cost != nil {
		c := p.Cost.Cents()
		item.CostPrice = &c
	}
	price := money.Zero
	if p.Price != nil {
		price = p.Price.Cents()
	}
	if key == KeyProduct {
		if m.b.Policy.PurchaseLedgerAccountID == "" {
			return nil, failf(ClassValidation, CodeRefCacheStale,
				"purchase_ledger_account_id is not set: Sage requires a purchase ledger account on products; set it in the tenant policy (or turn sync_products off)")
		}
		item.PurchaseLedgerAccountID = m.b.Policy.PurchaseLedgerAccountID
		item.CatalogItemTypeID = "NON_STOCK_ITEM"
		if p.ManageStock {
			item.CatalogItemTypeID = "STOCK_ITEM"
		}
		item.SalesPrices = []SageSalesPrice{{PriceName: "Selling Price", Price: price}}
	} else {
		item.SalesRates = []SageServiceRate{{RateName: "Rate", Rate: price}}
	}
	mkey := strconv.FormatInt(p.MagentoID, 10)
	op, err := m.operation(key, res, root, xref, mkey, "", item.ItemCode, item)
	if err != nil {
		return nil, err
	}
	m.add(op)
	return m.write("product", p.MagentoID, key)
}

func minAmount(a, b money.Amount) money.Amount {
	if a.Cmp(b) < 0 {
		return a
	}
	return b
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
