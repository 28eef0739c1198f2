package quirks

import (
	"github.com/shopspring/decimal"

	"github.com/ledgersync/ledger/libs/money"
)

// ExchangeRatePlaces is the precision of the header exchange_rate.
const ExchangeRatePlaces = 10

// ExchangeRate is quirk 27: Sage does not accept the line base_currency_*
// fields on POST and derives them from the header rate. So the mapper sends
// currency_id and exchange_rate = 1 / base_to_order_rate (rounded half away
// from zero to 10 decimals) on the header only, and nothing base_currency_* on
// the lines.
//
// Magento's base_to_order_rate converts base to order currency (1 GBP = 1.17
// EUR), so its inverse is base per unit of document currency, the direction
// Byte8 sends. A missing, zero or negative rate means a
// single-currency store: 1.
func ExchangeRate(baseToOrderRate *money.Number) decimal.Decimal {
	one := decimal.NewFromInt(1)
	if baseToOrderRate == nil || baseToOrderRate.Sign() <= 0 {
		return one
	}
	return one.DivRound(baseToOrderRate.Decimal(), ExchangeRatePlaces)
}
