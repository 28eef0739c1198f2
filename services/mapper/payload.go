package mapper

import "github.com/ledgersync/ledger/libs/money"

// The Sage v3.1 resource objects the mapper puts in SageOperation.body (without
// Sage's root key, which the writer adds). Money amounts are money.Amount and
// marshal as two-decimal numeric strings ("12.30"), the form Sage itself uses;
// quantities, unit prices and the exchange rate are money.Number and marshal as
// exact JSON numbers, because they may carry more than two decimals.

// SageAddress is a Sage address object (sage-v3.1 §4.1, §4.2).
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
	Email             string             `json:"email,omitempty"`
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
}

// SageInvoice is the body of POST /sales_invoices (root key "sales_invoice").
// ContactID is left empty: the writer fills it from the contact operation
// through a FieldBinding.
type SageInvoice struct {
	ContactID         string            `json:"contact_id,omitempty"`
	Date              string            `json:"date"`
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
