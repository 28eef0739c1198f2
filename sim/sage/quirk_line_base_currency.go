package sagesim

import "github.com/ledgersync/ledger/libs/money"

// lineBaseCurrencyMessage is the [I] wording: B8 reports the rejection, not the
// message.
const lineBaseCurrencyMessage = "This field cannot be set; it is calculated from the exchange rate."

// Quirk §27 (B8): the line base_currency_* fields, although in the POST schema,
// are not accepted; Sage derives them from the header exchange_rate. A naive line
// carrying base_currency_net_amount gets (after the §20 umbrella)
//
//	{"$severity":"error","$dataCode":"RecordInvalid","$message":"This field cannot be set; it is calculated from the exchange rate.","$source":"line_items.base_currency_net_amount"}
//
// one entry per field sent. With the quirk off the sent values are kept on the
// line (the header base amounts are still computed from exchange_rate).
func checkLineBaseCurrency(q Quirks, l *invoiceLineInput) []APIError {
	if !q.LineBaseCurrencyRejected {
		return nil
	}
	var errs []APIError
	for _, f := range l.baseCurrencyFields() {
		if f.value != nil {
			errs = append(errs, apiErr(CodeRecordInvalid, lineBaseCurrencyMessage, "line_items."+f.name))
		}
	}
	return errs
}

type namedAmount struct {
	name  string
	value *money.Amount
}

func (l *invoiceLineInput) baseCurrencyFields() []namedAmount {
	return []namedAmount{
		{"base_currency_unit_price", l.BaseCurrencyUnitPrice},
		{"base_currency_net_amount", l.BaseCurrencyNetAmount},
		{"base_currency_tax_amount", l.BaseCurrencyTaxAmount},
		{"base_currency_total_amount", l.BaseCurrencyTotalAmount},
		{"base_currency_discount_amount", l.BaseCurrencyDiscountAmount},
	}
}
