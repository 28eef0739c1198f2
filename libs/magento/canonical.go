package magento

import (
	"encoding/json"
	"strings"

	"github.com/ledgersync/ledger/libs/money"
)

// The canonical documents served under GET /rest/V1/byte8/… (wire §4). Field order
// follows the module's getters; optional keys are omitted when null (§4.2), and a
// decoder treats absent and null alike. Amounts are exact decimals decoded from JSON
// numbers; the simulator emits them as numbers (money.Number).

// Address is a billing or shipping address (§4.5).
type Address struct {
	Kind      string   `json:"kind"` // billing | shipping
	Street    []string `json:"street"`
	City      string   `json:"city"`
	Region    string   `json:"region,omitempty"`
	Postcode  string   `json:"postcode,omitempty"`
	CountryID string   `json:"country_id"`
	Telephone string   `json:"telephone,omitempty"`
}

// Contact is a customer (§4.5). MagentoID 0 is a synthetic guest.
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

// InvoiceLine is one invoice or credit-memo item (§4.4), amounts in order currency.
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

// Invoice is GET /V1/byte8/invoice/:id (§4.3).
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

// CreditMemo is GET /V1/byte8/creditmemo/:id (§4.6): amounts positive, in
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

// Envelope is the thin webhook body every outbox event carries (§1.3).
type Envelope struct {
	MagentoEntityID int64           `json:"magento_entity_id"`
	WebsiteID       int64           `json:"website_id"`
	StoreID         int64           `json:"store_id"`
	OccurredAt      string          `json:"occurred_at"`
	Payload         json.RawMessage `json:"payload"`
}

// SyncState is the body of POST /V1/byte8/sync-state (§5.1). Nil pointers are sent
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
// accepted by every MySQL/MariaDB SQL mode, unlike RFC 3339 (wire §9.10).
const MySQLTimestamp = "2006-01-02 15:04:05"

// PairRequest is the body of POST /V1/byte8/setup/pair (§6).
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
