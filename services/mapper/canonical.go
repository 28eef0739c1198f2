package mapper

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
)

// The canonical documents of wire §4 that libs/magento does not model. Amounts
// are exact decimals decoded from JSON numbers (or numeric strings); absent and
// null decode alike.

// Invoice is GET /V1/byte8/invoice/:id (wire §4.3) plus two optional keys a
// shop running Adobe Commerce may add to the canonical invoice: the gift-card
// and store-credit (customer balance) amounts applied to it, in order
// currency. The Byte8 module does not send them; when absent, such amounts
// show up as a residue between grand_total and the lines and are handled by
// the reconciliation rule (README, "To the penny").
type Invoice struct {
	magento.Invoice
	GiftCardsAmount       *money.Number `json:"gift_cards_amount,omitempty"`
	CustomerBalanceAmount *money.Number `json:"customer_balance_amount,omitempty"`
}

// CreditMemo is GET /V1/byte8/creditmemo/:id (wire §4.6).
type CreditMemo = magento.CreditMemo

// Payment is GET /V1/byte8/payment/:id, :id being the invoice id (wire §4.7).
// gateway_metadata arrives re-indexed (a list, or an object from a fixed
// module); it is opaque audit data and kept raw.
type Payment struct {
	MagentoID          int64        `json:"magento_id"`
	InvoiceID          int64        `json:"invoice_id"`
	InvoiceIncrementID string       `json:"invoice_increment_id"`
	Method             string       `json:"method"`
	Currency           string       `json:"currency"`
	Amount             money.Number `json:"amount"`
	CapturedAt         string       `json:"captured_at"`
	GatewayTxnID       string       `json:"gateway_txn_id,omitempty"`
	GatewayMetadata    any          `json:"gateway_metadata,omitempty"`
}

// Product is GET /V1/byte8/product/:id (wire §4.8); prices in base currency.
type Product struct {
	MagentoID    int64         `json:"magento_id"`
	SKU          string        `json:"sku"`
	Name         string        `json:"name"`
	ProductType  string        `json:"product_type"`
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

// PaymentMethod is one element of GET /V1/byte8/payment-methods (wire §4.1).
type PaymentMethod struct {
	Code     string  `json:"code"`
	Label    *string `json:"label"`
	IsActive bool    `json:"is_active"`
}

// PaymentMethods fetches GET /V1/byte8/payment-methods (wire §4.1): every
// installed method, inactive ones included. A shop whose module predates the
// endpoint answers 404: that is no methods, not an error.
func PaymentMethods(ctx context.Context, c *magento.Client) ([]PaymentMethod, error) {
	var raw json.RawMessage
	if err := c.Get(ctx, "/V1/byte8/payment-methods", &raw); err != nil {
		if magento.IsStatus(err, http.StatusNotFound) {
			return nil, nil
		}
		return nil, err
	}
	var out []PaymentMethod
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("payment-methods is not a list of {code,label,is_active}: %w", err)
	}
	return out, nil
}
