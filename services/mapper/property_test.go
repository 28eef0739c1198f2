package mapper

import (
	"encoding/json"
	"flag"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/ledgersync/ledger/libs/money"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

var (
	propertyDocs = flag.Int("property.docs", 10000, "invoices the property test generates (credit memos come on top); -short uses 1000")
	propertySeed = flag.Uint64("property.seed", 1, "seed of the property test")
)

// TestPropertyEveryDocumentReachesSageToThePenny generates random Magento
// invoices (and credit memos of about a fifth of them) with every feature of
// magentosim's rich generator plus gift cards, maps each with the Builder and
// plays the writes against the Sage simulator with every quirk on. Every
// document must be accepted, with Sage's total_amount equal to Magento's
// grand_total to the penny and its base-currency total within 0.01 of
// grand_total ÷ base_to_order_rate; paid invoices end with nothing
// outstanding. A tenth of the paid invoices arrive as invoice.paid before
// invoice.created (the payment ensures the invoice). B2C consolidation is on.
func TestPropertyEveryDocumentReachesSageToThePenny(t *testing.T) {
	n := *propertyDocs
	if testing.Short() {
		n = min(n, 1000)
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(*propertySeed, 99))
	s := newSimSage(t, nil)
	pol := s.policy()
	threshold := money.MustParse("40.00")
	pol.B2C.Enabled, pol.B2C.Threshold = true, &threshold
	b := s.builder(pol)
	customers := magentosim.RandomRichCustomers(rng, max(50, n/3), 1000)
	ctx := t.Context()

	var invoices, memos, payments, consolidated, crossBorder int
	cent := decimal.New(1, -2)
	check := func(what string, d sageDoc, grand money.Amount, rate *money.Number) {
		t.Helper()
		if !d.TotalAmount.Equal(grand.Cents()) {
			t.Fatalf("%s: Sage total_amount %s, Magento grand_total %s", what, d.TotalAmount, grand)
		}
		r := decimal.NewFromInt(1)
		if rate != nil && rate.Sign() > 0 {
			r = rate.Decimal()
		}
		want := grand.Decimal().DivRound(r, 8)
		if diff := d.BaseCurrencyTotalAmount.Decimal().Sub(want).Abs(); diff.GreaterThan(cent) {
			t.Fatalf("%s: base total %s, want %s ± 0.01 (rate %s)", what, d.BaseCurrencyTotalAmount, want, r)
		}
	}
	for i := range n {
		id := int64(100000 + i)
		mi := magentosim.RandomRichInvoice(rng, id, customers[rng.IntN(len(customers))])
		raw, err := json.Marshal(mi)
		if err != nil {
			t.Fatal(err)
		}
		var inv Invoice
		if err := json.Unmarshal(raw, &inv); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(25) == 0 && inv.GrandTotal.Sign() > 0 {
			gc := money.MustParse("10.00")
			if gc.Cmp(inv.GrandTotal.Amount) > 0 {
				gc = inv.GrandTotal.Amount
			}
			inv.GiftCardsAmount = &money.Number{Amount: gc}
			inv.GrandTotal = money.Number{Amount: inv.GrandTotal.Sub(gc)}
		}
		if inv.Customer.IsGuest() && !quirksCross(inv) && inv.Customer.Company == "" && inv.GrandTotal.Cmp(threshold) <= 0 {
			consolidated++
		}
		if quirksCross(inv) {
			crossBorder++
		}
		what := "invoice " + inv.IncrementID
		paid := inv.State == "paid"
		pay := Payment{Method: inv.PaymentMethod, Amount: inv.GrandTotal, CapturedAt: inv.CreatedAt}
		_, mapped := pol.BankAccount(inv.PaymentMethod)
		payable := paid && mapped && inv.GrandTotal.Sign() > 0

		var ids map[string]string
		if payable && rng.IntN(10) == 0 { // out of order: the payment first
			w, err := b.Payment(ctx, inv, pay)
			if err != nil {
				t.Fatalf("%s payment: %v", what, err)
			}
			if ids, err = s.exec(w, nil); err != nil {
				t.Fatalf("%s payment first: %v\n%s", what, err, raw)
			}
			payments++
		}
		w, err := b.Invoice(ctx, inv)
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, raw)
		}
		got, err := s.exec(w, nil)
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, raw)
		}
		if ids != nil && ids[KeyInvoice] != got[KeyInvoice] {
			t.Fatalf("%s: the payment's invoice %s is not the invoice %s", what, ids[KeyInvoice], got[KeyInvoice])
		}
		invoices++
		d := s.doc("sales_invoices", got[KeyInvoice])
		check(what, d, inv.GrandTotal.Amount, inv.BaseToOrderRate)
		if payable && ids == nil {
			w, err := b.Payment(ctx, inv, pay)
			if err != nil {
				t.Fatalf("%s payment: %v", what, err)
			}
			if _, err := s.exec(w, nil); err != nil {
				t.Fatalf("%s payment: %v\n%s", what, err, raw)
			}
			payments++
		}
		if payable {
			if d := s.doc("sales_invoices", got[KeyInvoice]); !d.OutstandingAmount.IsZero() {
				t.Fatalf("%s: paid in Magento but %s outstanding in Sage", what, d.OutstandingAmount)
			}
		}
		if rng.IntN(5) == 0 && inv.GiftCardsAmount == nil {
			mcm := magentosim.RandomRichCreditMemo(rng, id, mi)
			raw, _ := json.Marshal(mcm)
			var cm CreditMemo
			if err := json.Unmarshal(raw, &cm); err != nil {
				t.Fatal(err)
			}
			w, err := b.CreditMemo(ctx, cm, &inv)
			if err != nil {
				t.Fatalf("credit memo %s: %v\n%s", cm.IncrementID, err, raw)
			}
			ids, err := s.exec(w, nil)
			if err != nil {
				t.Fatalf("credit memo %s: %v\n%s", cm.IncrementID, err, raw)
			}
			if ids[KeyInvoice] != got[KeyInvoice] {
				t.Fatalf("credit memo %s: ensured another invoice", cm.IncrementID)
			}
			cn := s.doc("sales_credit_notes", ids[KeyCreditNote])
			check("credit memo "+cm.IncrementID, cn, cm.GrandTotal.Amount, cm.BaseToOrderRate)
			if cn.Contact.ID != d.Contact.ID {
				t.Fatalf("credit memo %s: on contact %s, its invoice on %s", cm.IncrementID, cn.Contact.ID, d.Contact.ID)
			}
			memos++
		}
	}
	t.Logf("%d invoices, %d credit memos, %d payments (%d guest orders under the B2C threshold, %d cross-border) in %s",
		invoices, memos, payments, consolidated, crossBorder, time.Since(start).Round(time.Millisecond))
}

func quirksCross(inv Invoice) bool {
	return inv.BillingAddress != nil && inv.BillingAddress.CountryID != "" && inv.BillingAddress.CountryID != "GB"
}
