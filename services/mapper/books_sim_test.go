package mapper

import (
	"testing"

	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/policy"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Books that stay true after the first write, played against the Sage
// simulator with the writer's interpreter: what Sage has outstanding after
// each event is what the customer still owes in Magento.

// play runs w against s and returns the Sage ids by operation key.
func (s *simSage) play(w *ledgerv1.SageWrite, err error) map[string]string {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
	ids, err := s.exec(w, nil)
	if err != nil {
		s.t.Fatalf("Sage refused the write: %v", err)
	}
	return ids
}

// wantInvoice checks a sales invoice's total and outstanding amount.
func (s *simSage) wantInvoice(id, total, outstanding string) {
	s.t.Helper()
	d := s.doc("sales_invoices", id)
	if !d.TotalAmount.Equal(money.MustParse(total)) || !d.OutstandingAmount.Equal(money.MustParse(outstanding)) {
		s.t.Fatalf("sales invoice: total %s outstanding %s, want total %s outstanding %s",
			d.TotalAmount, d.OutstandingAmount, total, outstanding)
	}
}

// TestUnitemisedCreditSettlesInSage: an invoice of 39.18 on which an
// extension applied a 10.00 gift card the feed does not itemise (grand_total
// 29.18). With unitemised_credit the invoice is booked at 39.18, the 10.00 is
// received from the clearing account, and the customer's payment of 29.18
// leaves nothing outstanding.
func TestUnitemisedCreditSettlesInSage(t *testing.T) {
	t.Parallel()
	s := newSimSage(t, nil)
	p := s.policy()
	clearing := s.banks[len(s.banks)-1]
	p.UnitemisedCredit = &policy.UnitemisedCredit{BankAccountID: clearing, MaxShare: money.MustParse("0.50")}
	b := s.builder(p)
	inv := fixtureInvoice(t, "registered_customer")
	inv.GrandTotal = amt("29.18")

	ids := s.play(b.Invoice(t.Context(), inv))
	s.wantInvoice(ids[KeyInvoice], "39.18", "29.18")
	var credit struct {
		TotalAmount money.Amount `json:"total_amount"`
		BankAccount struct {
			ID string `json:"id"`
		} `json:"bank_account"`
		Reference string `json:"reference"`
	}
	if st := s.get("/contact_payments/"+ids[KeyUnitemisedCredit], &credit); st != 200 {
		t.Fatalf("GET the credit receipt: %d", st)
	}
	if !credit.TotalAmount.Equal(money.MustParse("10.00")) || credit.BankAccount.ID != clearing || credit.Reference != "MAG-000000042-CR" {
		t.Fatalf("credit receipt %+v: want 10.00 from %s, reference MAG-000000042-CR", credit, clearing)
	}

	pay := Payment{MagentoID: inv.MagentoID, InvoiceID: inv.MagentoID, Method: "checkmo", Currency: "GBP",
		Amount: inv.GrandTotal, CapturedAt: inv.CreatedAt}
	ids = s.play(b.Payment(t.Context(), inv, pay))
	s.wantInvoice(ids[KeyInvoice], "39.18", "0.00")
}

// TestPaymentAfterCreditNote: a credit memo on an open invoice, then the
// invoice paid, in both orders the mapper can see them. Credit memo first:
// the credit note is set against the open invoice and the receipt pays what
// is left. Payment first: the receipt pays the invoice and the credit memo,
// seeing the invoice paid, refunds. Either way nothing stays outstanding and
// Sage refuses nothing.
func TestPaymentAfterCreditNote(t *testing.T) {
	t.Parallel()
	for _, creditFirst := range []bool{true, false} {
		name := map[bool]string{true: "credit memo, then payment", false: "payment, then credit memo"}[creditFirst]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newSimSage(t, nil)
			b := s.builder(s.policy())
			open := fixtureInvoice(t, "registered_customer") // 39.18, checkmo
			open.State = "open"
			oid := open.MagentoID
			cm := CreditMemo{MagentoID: 10, IncrementID: "000000010", InvoiceID: &oid, WebsiteID: 1, Currency: "GBP",
				Customer: open.Customer, Lines: open.Lines[:1], GrandTotal: open.Lines[0].LineTotal, CreatedAt: "2026-05-03T08:00:00Z"}
			paid := open
			paid.State = "paid"
			pay := Payment{MagentoID: oid, InvoiceID: oid, Method: "checkmo", Currency: "GBP", Amount: paid.GrandTotal,
				CapturedAt: "2026-05-04T08:00:00Z"}
			total := paid.GrandTotal.Cents().String()

			ids := s.play(b.Invoice(t.Context(), open))
			if creditFirst {
				s.play(b.CreditMemo(t.Context(), cm, &open))
				s.wantInvoice(ids[KeyInvoice], total, paid.GrandTotal.Cents().Sub(cm.GrandTotal.Cents()).String())
				s.play(b.Payment(t.Context(), paid, pay))
			} else {
				s.play(b.Payment(t.Context(), paid, pay))
				s.play(b.CreditMemo(t.Context(), cm, &paid))
			}
			s.wantInvoice(ids[KeyInvoice], total, "0.00")
		})
	}
}
