package mapper

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
)

// The canonical documents the mapper reads. libs/magento defines them; the
// mapper only extends the invoice. Amounts are exact decimals decoded from JSON
// numbers (or numeric strings); absent and null decode alike.

// Invoice is GET /V1/byte8/invoice/:id plus two optional keys a
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

// CreditMemo is GET /V1/byte8/creditmemo/:id.
type CreditMemo = magento.CreditMemo

// Payment, Product and PaymentMethod are the canonical documents of
// libs/magento, named here for the mapper's API.
type (
	Payment       = magento.Payment
	Product       = magento.Product
	PaymentMethod = magento.PaymentMethod
)

// PaymentMethods fetches GET /V1/byte8/payment-methods: every installed
// method, inactive ones included. A shop whose module predates the
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
