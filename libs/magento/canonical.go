package magento

import (
	"encoding/json"
	"strings"

	"github.com/ledgersync/ledger/libs/money"
)

// The canonical documents the module serves under GET /rest/V1/byte8/…. Keys come
// out in the order the module's interfaces declare their getters (the field order
// here); an optional key whose getter returns null is omitted, never sent as null,
// and a decoder treats absent and null alike. Amounts are exact decimals decoded
// from JSON numbers (100.0 and 100 alike); the simulator emits them as numbers
// (money.Number). Dates are YYYY-MM-DDTHH:MM:SSZ (UTC), or "" when Magento had none.
// These types are the only definitions: the mapper and the Magento simulator use
// them.

// Address is a billing or shipping address.
type Address struct {
	Kind      string   `json:"kind"` // billing | shipping
	Street    []string `json:"street"`
	City      string   `json:"city"`
	Region    string   `json:"region,omitempty"`
	Postcode  string   `json:"postcode,omitempty"`
	CountryID string   `json:"country_id"`
	Telephone string   `json:"telephone,omitempty"`
}

// Contact is GET /V1/byte8/customer/:id and the customer inside an invoice or
// credit memo. MagentoID 0 is a synthetic guest.
type Contact struct {
	MagentoID int64     `json:"magento_id"`
	Email     string    `json:"email"`
	FirstName string    `json:"first_name,omitempty"`
	LastName  string    `json:"last_name,omitempty"`
	Company   string    `json:"company,omitempty"`
	Phone     string    `json:"phone,omitempty"`
	WebsiteID int64     `json:"website_id"`
	GroupID   *int64    `json:"group_id,omitempty"`
	Addresses []Address `json:"addresses"`
	CreatedAt string    `json:"created_at,omitempty"`
	UpdatedAt string    `json:"updated_at,omitempty"`
}

// IsGuest reports whether the contact is a synthetic guest (no customer account).
func (c Contact) IsGuest() bool { return c.MagentoID == 0 }

// InvoiceLine is one invoice or credit-memo item, amounts in order currency.
type InvoiceLine struct {
	SKU          string        `json:"sku"`
	Name         string        `json:"name"`
	Qty          money.Number  `json:"qty"`
	UnitPrice    money.Number  `json:"unit_price"`
	LineSubtotal money.Number  `json:"line_subtotal"`
	LineTax      money.Number  `json:"line_tax"`
	LineTotal    money.Number  `json:"line_total"`
	TaxRate      *money.Number `json:"tax_rate,omitempty"` // ratio, 0.2 = 20 %
	TaxClass     string        `json:"tax_class,omitempty"`
	ProductType  string        `json:"product_type,omitempty"`
}

// Invoice is GET /V1/byte8/invoice/:id, amounts in order currency.
type Invoice struct {
	MagentoID         int64         `json:"magento_id"`
	IncrementID       string        `json:"increment_id"`
	OrderID           int64         `json:"order_id"`
	OrderIncrementID  string        `json:"order_increment_id"`
	WebsiteID         int64         `json:"website_id"`
	StoreID           int64         `json:"store_id"`
	Currency          string        `json:"currency"`
	State             string        `json:"state"` // open | paid | cancelled
	Customer          Contact       `json:"customer"`
	Lines             []InvoiceLine `json:"lines"`
	Subtotal          money.Number  `json:"subtotal"`
	TaxAmount         money.Number  `json:"tax_amount"`
	ShippingAmount    money.Number  `json:"shipping_amount"`
	ShippingTaxAmount money.Number  `json:"shipping_tax_amount"`
	DiscountAmount    money.Number  `json:"discount_amount"`
	GrandTotal        money.Number  `json:"grand_total"`
	CreatedAt         string        `json:"created_at"`
	PaymentMethod     string        `json:"payment_method,omitempty"`
	BillingAddress    *Address      `json:"billing_address,omitempty"`
	ShippingAddress   *Address      `json:"shipping_address,omitempty"`
	PONumber          string        `json:"po_number,omitempty"`
	BaseToOrderRate   *money.Number `json:"base_to_order_rate,omitempty"`
}

// CreditMemo is GET /V1/byte8/creditmemo/:id: amounts positive, in
// order currency; no addresses, store, state or discount, and no order-address
// enrichment of the customer. InvoiceID is absent when the refund was made
// against the order.
type CreditMemo struct {
	MagentoID          int64         `json:"magento_id"`
	IncrementID        string        `json:"increment_id"`
	InvoiceID          *int64        `json:"invoice_id,omitempty"`
	InvoiceIncrementID string        `json:"invoice_increment_id,omitempty"`
	WebsiteID          int64         `json:"website_id"`
	Currency           string        `json:"currency"`
	Customer           Contact       `json:"customer"`
	Lines              []InvoiceLine `json:"lines"`
	AdjustmentPositive money.Number  `json:"adjustment_positive"`
	AdjustmentNegative money.Number  `json:"adjustment_negative"`
	GrandTotal         money.Number  `json:"grand_total"`
	ShippingAmount     money.Number  `json:"shipping_amount"`
	ShippingTaxAmount  money.Number  `json:"shipping_tax_amount"`
	Reason             string        `json:"reason,omitempty"`
	CreatedAt          string        `json:"created_at"`
	InvoiceCreatedAt   string        `json:"invoice_created_at,omitempty"`
	BaseToOrderRate    *money.Number `json:"base_to_order_rate,omitempty"`
}

// Payment is GET /V1/byte8/payment/:id, :id being the invoice id: the payment of
// the invoice's order. Amount is the invoice's grand_total in order currency and
// CapturedAt the invoice's created_at, not the gateway's capture time.
// GatewayMetadata is the order payment's additional_information, opaque audit
// data: Magento re-indexes it into a list of values with the keys dropped and
// nested arrays as JSON text (["ch_123","{\"x\":1}"], or []), and a module that
// fixes this would send an object, so any JSON value decodes.
type Payment struct {
	MagentoID          int64        `json:"magento_id"`
	InvoiceID          int64        `json:"invoice_id"`
	InvoiceIncrementID string       `json:"invoice_increment_id"`
	Method             string       `json:"method"`
	Currency           string       `json:"currency"`
	Amount             money.Number `json:"amount"`
	CapturedAt         string       `json:"captured_at"`
	GatewayTxnID       string       `json:"gateway_txn_id,omitempty"`
	GatewayMetadata    any          `json:"gateway_metadata"`
}

// Product is GET /V1/byte8/product/:id. Prices are catalog values in base
// currency (special_price without its date window). StockQty is absent and
// ManageStock false when the product has no stock item. TaxClass is the
// tax_class_id as a string ("2"; "0" is possible), absent when unset.
// WebsiteIDs may be empty.
type Product struct {
	MagentoID    int64         `json:"magento_id"`
	SKU          string        `json:"sku"`
	Name         string        `json:"name"`
	ProductType  string        `json:"product_type"` // simple, virtual, downloadable, configurable, bundle, grouped
	Price        *money.Number `json:"price,omitempty"`
	SpecialPrice *money.Number `json:"special_price,omitempty"`
	Cost         *money.Number `json:"cost,omitempty"`
	Weight       *money.Number `json:"weight,omitempty"`
	StockQty     *money.Number `json:"stock_qty,omitempty"`
	ManageStock  bool          `json:"manage_stock"`
	TaxClass     string        `json:"tax_class,omitempty"`
	WebsiteIDs   []int64       `json:"website_ids"`
	CreatedAt    string        `json:"created_at,omitempty"`
	UpdatedAt    string        `json:"updated_at,omitempty"`
}

// PaymentMethod is one element of GET /V1/byte8/payment-methods, which lists
// every installed method, inactive ones included, at store 0. Label is null
// (sent, not omitted) when the method's title is empty; IsActive is the
// default-scope enablement.
type PaymentMethod struct {
	Code     string  `json:"code"`
	Label    *string `json:"label"`
	IsActive bool    `json:"is_active"`
}

// Envelope is the thin webhook body every outbox event carries.
type Envelope struct {
	MagentoEntityID int64           `json:"magento_entity_id"`
	WebsiteID       int64           `json:"website_id"`
	StoreID         int64           `json:"store_id"`
	OccurredAt      string          `json:"occurred_at"`
	Payload         json.RawMessage `json:"payload"`
}

// SyncState is the body of POST /V1/byte8/sync-state. Nil pointers are sent
// as JSON null, which Magento treats as "not sent" (and which clears the column).
type SyncState struct {
	EntityType        string  `json:"entity_type"` // invoice | creditmemo | customer | product
	MagentoEntityID   int64   `json:"magento_entity_id"`
	Provider          string  `json:"provider"`
	SyncStatus        string  `json:"sync_status"` // synced | skipped | failed
	ProviderEntityID  *string `json:"provider_entity_id"`
	ProviderReference *string `json:"provider_reference"`
	SkipReason        *string `json:"skip_reason"`
	ErrorCode         *string `json:"error_code"`
	LastSyncAt        string  `json:"last_sync_at"`
}

// ProviderSage is the provider key of the Sage module in the sync-state mirror.
const ProviderSage = "sage_accounting"

// MySQLTimestamp is the layout Magento itself writes into timestamp columns; it is
// accepted by every MySQL/MariaDB SQL mode, unlike RFC 3339, whose T and Z some
// versions and modes refuse in a timestamp column.
const MySQLTimestamp = "2006-01-02 15:04:05"

// PairRequest is the body of the anonymous POST /V1/byte8/setup/pair.
type PairRequest struct {
	PairingCode   string `json:"pairing_code"`
	TenantID      string `json:"tenant_id"`
	APIKey        string `json:"byte8_api_key"`
	LedgerBaseURL string `json:"ledger_base_url"`
}

// EntityType maps an event name to the sync-state entity type Magento mirrors
// (invoice.paid → invoice, creditmemo.created → creditmemo, …); "" for events
// that have no mirror row.
func EntityType(event string) string {
	prefix, _, _ := strings.Cut(event, ".")
	switch prefix {
	case "invoice", "creditmemo", "customer", "product":
		return prefix
	}
	return ""
}
