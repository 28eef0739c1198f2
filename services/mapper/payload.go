package mapper

import "github.com/ledgersync/ledger/libs/money"

// The Sage v3.1 resource objects the mapper puts in SageOperation.body (without
// Sage's root key, which the writer adds). Money amounts are money.Amount and
// marshal as two-decimal numeric strings ("12.30"), the form Sage itself uses;
// quantities, unit prices and the exchange rate are money.Number and marshal as
// exact JSON numbers, because they may carry more than two decimals.

// SageAddress is a Sage address object, the main_address or delivery_address
// of a contact or sales document.
type SageAddress struct {
	AddressLine1 string `json:"address_line_1"`
	AddressLine2 string `json:"address_line_2,omitempty"`
	City         string `json:"city"`
	Region       string `json:"region,omitempty"`
	PostalCode   string `json:"postal_code,omitempty"`
	CountryID    string `json:"country_id"`
}

// SageContactPerson is a contact's main_contact_person.
type SageContactPerson struct {
	Name          string `json:"name"`
	Email         string `json:"email,omitempty"`
	Telephone     string `json:"telephone,omitempty"`
	IsMainContact bool   `json:"is_main_contact"`
}

// SageContact is the body of POST /contacts (root key "contact").
type SageContact struct {
	Name              string             `json:"name"`
	ContactTypeIDs    []string           `json:"contact_type_ids"`
	Reference         string             `json:"reference"`
	CurrencyID        string             `json:"currency_id"`
	MainAddress       *SageAddress       `json:"main_address,omitempty"`
	DeliveryAddress   *SageAddress       `json:"delivery_address,omitempty"`
	MainContactPerson *SageContactPerson `json:"main_contact_person,omitempty"`
}

// SageInvoiceLine is one entry of a sales invoice's invoice_lines.
type SageInvoiceLine struct {
	Description       string        `json:"description"`
	LedgerAccountID   string        `json:"ledger_account_id"`
	Quantity          money.Number  `json:"quantity"`
	UnitPrice         money.Number  `json:"unit_price"`
	DiscountAmount    *money.Amount `json:"discount_amount,omitempty"`
	NetAmount         money.Amount  `json:"net_amount"`
	TaxRateID         string        `json:"tax_rate_id"`
	TaxAmount         money.Amount  `json:"tax_amount"`
	CurrencyTaxAmount money.Amount  `json:"currency_tax_amount"`
	TotalAmount       money.Amount  `json:"total_amount"`
	// EUGoodsServicesTypeID is set on cross-border documents only (quirk 30).
	EUGoodsServicesTypeID string `json:"eu_goods_services_type_id,omitempty"`
}

// SageInvoice is the body of POST /sales_invoices (root key "sales_invoice").
// ContactID is left empty: the writer fills it from the contact operation
// through a FieldBinding.
type SageInvoice struct {
	ContactID         string            `json:"contact_id,omitempty"`
	Date              string            `json:"date"`
	DueDate           string            `json:"due_date,omitempty"`
	Reference         string            `json:"reference"`
	CurrencyID        string            `json:"currency_id"`
	ExchangeRate      money.Number      `json:"exchange_rate"`
	MainAddress       *SageAddress      `json:"main_address,omitempty"`
	DeliveryAddress   *SageAddress      `json:"delivery_address,omitempty"`
	InvoiceLines      []SageInvoiceLine `json:"invoice_lines"`
	ShippingNetAmount money.Amount      `json:"shipping_net_amount"`
	ShippingTaxRateID string            `json:"shipping_tax_rate_id"`
	ShippingTaxAmount money.Amount      `json:"shipping_tax_amount"`
	NetAmount         money.Amount      `json:"net_amount"`
	TaxAmount         money.Amount      `json:"tax_amount"`
	TotalAmount       money.Amount      `json:"total_amount"`
}

// SageCreditNote is the body of POST /sales_credit_notes (root key
// "sales_credit_note"): the invoice's shape with credit_note_lines and
// original_invoice_date. Shipping refunds are a line (on the carriage
// account), so the shipping header fields stay zero.
type SageCreditNote struct {
	ContactID           string            `json:"contact_id,omitempty"`
	Date                string            `json:"date"`
	OriginalInvoiceDate string            `json:"original_invoice_date,omitempty"`
	Reference           string            `json:"reference"`
	Notes               string            `json:"notes,omitempty"`
	CurrencyID          string            `json:"currency_id"`
	ExchangeRate        money.Number      `json:"exchange_rate"`
	MainAddress         *SageAddress      `json:"main_address,omitempty"`
	DeliveryAddress     *SageAddress      `json:"delivery_address,omitempty"`
	CreditNoteLines     []SageInvoiceLine `json:"credit_note_lines"`
	NetAmount           money.Amount      `json:"net_amount"`
	TaxAmount           money.Amount      `json:"tax_amount"`
	TotalAmount         money.Amount      `json:"total_amount"`
}

// SageAllocatedArtefact is one allocated_artefacts entry. ArtefactID is left
// empty: the writer fills it from an earlier operation through a FieldBinding
// on "allocated_artefacts.<i>.artefact_id".
type SageAllocatedArtefact struct {
	ArtefactID string       `json:"artefact_id"`
	Amount     money.Amount `json:"amount"`
}

// SageContactPayment is the body of POST /contact_payments (root key
// "contact_payment"): a CUSTOMER_RECEIPT settling an invoice or a
// CUSTOMER_REFUND paying out a credit note, in the document's currency and
// exchange rate.
type SageContactPayment struct {
	TransactionTypeID  string                  `json:"transaction_type_id"`
	ContactID          string                  `json:"contact_id,omitempty"`
	BankAccountID      string                  `json:"bank_account_id"`
	PaymentMethodID    string                  `json:"payment_method_id,omitempty"`
	Date               string                  `json:"date"`
	TotalAmount        money.Amount            `json:"total_amount"`
	CurrencyID         string                  `json:"currency_id"`
	ExchangeRate       money.Number            `json:"exchange_rate"`
	Reference          string                  `json:"reference,omitempty"`
	AllocatedArtefacts []SageAllocatedArtefact `json:"allocated_artefacts"`
}

// SageContactAllocation is the body of POST /contact_allocations (root key
// "contact_allocation"): a credit note set against its invoice, the invoice
// positive and the credit note negative.
type SageContactAllocation struct {
	TransactionTypeID  string                  `json:"transaction_type_id"`
	ContactID          string                  `json:"contact_id,omitempty"`
	Date               string                  `json:"date"`
	AllocatedArtefacts []SageAllocatedArtefact `json:"allocated_artefacts"`
}

// SageSalesPrice is a product's sales_prices entry.
type SageSalesPrice struct {
	PriceName        string       `json:"price_name"`
	Price            money.Amount `json:"price"`
	PriceIncludesTax bool         `json:"price_includes_tax"`
}

// SageServiceRate is a service's sales_rates entry.
type SageServiceRate struct {
	RateName        string       `json:"rate_name"`
	Rate            money.Amount `json:"rate"`
	RateIncludesTax bool         `json:"rate_includes_tax"`
}

// SageCatalogItem is the body of POST /products (root key "product") or
// POST /services (root key "service").
type SageCatalogItem struct {
	ItemCode                string            `json:"item_code"`
	Description             string            `json:"description"`
	SalesLedgerAccountID    string            `json:"sales_ledger_account_id,omitempty"`
	PurchaseLedgerAccountID string            `json:"purchase_ledger_account_id,omitempty"`
	CostPrice               *money.Amount     `json:"cost_price,omitempty"`
	SourceGUID              string            `json:"source_guid,omitempty"`
	CatalogItemTypeID       string            `json:"catalog_item_type_id,omitempty"`
	SalesPrices             []SageSalesPrice  `json:"sales_prices,omitempty"`
	SalesRates              []SageServiceRate `json:"sales_rates,omitempty"`
}
