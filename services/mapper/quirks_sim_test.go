package mapper

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/money"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	"github.com/ledgersync/ledger/services/mapper/quirks"
)

// One test per entry of the quirk catalogue (package quirks): the mapper's write played
// against the Sage simulator with every quirk on, once made naive (the rule's
// effect undone) — Sage refuses it or books the wrong thing — and once as the
// mapper sends it — Sage books exactly what Magento charged.

// quirkWrite maps one fixture invoice over sim's reference data.
func quirkWrite(t *testing.T, s *simSage, inv Invoice) *ledgerv1.SageWrite {
	t.Helper()
	w, err := s.builder(s.policy()).Invoice(t.Context(), inv)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func onInvoice(fn func(body map[string]any)) func(*ledgerv1.SageOperation, map[string]any) {
	return func(op *ledgerv1.SageOperation, body map[string]any) {
		if op.Resource == ledgerv1.SageResource_SAGE_RESOURCE_SALES_INVOICE {
			fn(body)
		}
	}
}

func eachLine(body map[string]any, fn func(map[string]any)) {
	for _, l := range body["invoice_lines"].([]any) {
		fn(l.(map[string]any))
	}
}

// wantRefused asserts a 422 whose envelope names source.
func wantRefused(t *testing.T, err error, source string) {
	t.Helper()
	var oe *opError
	if !errors.As(err, &oe) || oe.status != http.StatusUnprocessableEntity || !strings.Contains(oe.body, source) {
		t.Fatalf("naive write: want a 422 naming %s, got %v", source, err)
	}
}

func wantBooked(t *testing.T, s *simSage, w *ledgerv1.SageWrite, grand string) sageDoc {
	t.Helper()
	ids, err := s.exec(w, nil)
	if err != nil {
		t.Fatalf("with the rule: %v", err)
	}
	d := s.doc("sales_invoices", ids[KeyInvoice])
	if !d.TotalAmount.Equal(money.MustParse(grand)) {
		t.Fatalf("with the rule: Sage total %s, Magento grand_total %s", d.TotalAmount, grand)
	}
	return d
}

func hasQuirk(t *testing.T, w *ledgerv1.SageWrite, name string) {
	t.Helper()
	if !slices.Contains(w.AppliedQuirks, name) {
		t.Errorf("applied_quirks %v lacks %s", w.AppliedQuirks, name)
	}
}

func TestQuirkS07LineTax(t *testing.T) {
	t.Parallel()
	s := newSimSage(t, nil)
	w := quirkWrite(t, s, fixtureInvoice(t, "html_entities"))
	_, err := s.exec(w, onInvoice(func(b map[string]any) { eachLine(b, func(l map[string]any) { delete(l, "currency_tax_amount") }) }))
	wantRefused(t, err, "line_items.currency_tax_amount")
	hasQuirk(t, w, quirks.NameLineTax)
	wantBooked(t, s, w, "51.00")
}

func TestQuirkS17Addresses(t *testing.T) {
	t.Parallel()
	s := newSimSage(t, nil)
	w := quirkWrite(t, s, fixtureInvoice(t, "registered_customer"))
	ids, err := s.exec(w, onInvoice(func(b map[string]any) { delete(b, "delivery_address") }))
	if err != nil {
		t.Fatal(err)
	}
	if d := s.doc("sales_invoices", ids[KeyInvoice]); d.DeliveryAddress == nil || d.DeliveryAddress.City != "Leeds" {
		t.Fatalf("naive: Sage should copy the billing address (Leeds) into delivery, got %+v", d.DeliveryAddress)
	}
	s2 := newSimSage(t, nil)
	w = quirkWrite(t, s2, fixtureInvoice(t, "registered_customer"))
	hasQuirk(t, w, quirks.NameAddresses)
	if d := wantBooked(t, s2, w, "39.18"); d.DeliveryAddress == nil || d.DeliveryAddress.City != "York" {
		t.Fatalf("with the rule: delivery %+v, want York", d.DeliveryAddress)
	}
}

func TestQuirkS22Description(t *testing.T) {
	t.Parallel()
	s := newSimSage(t, nil)
	inv := fixtureInvoice(t, "html_entities")
	w := quirkWrite(t, s, inv)
	_, err := s.exec(w, onInvoice(func(b map[string]any) {
		b["invoice_lines"].([]any)[0].(map[string]any)["description"] = inv.Lines[0].Name
	}))
	wantRefused(t, err, "HTML entity")
	hasQuirk(t, w, quirks.NameDescription)
	wantBooked(t, s, w, "51.00")
}

func TestQuirkS23ContactReference(t *testing.T) {
	t.Parallel()
	s := newSimSage(t, nil)
	inv := fixtureInvoice(t, "guest_mixed_case_email")
	w := quirkWrite(t, s, inv)
	naive := func(op *ledgerv1.SageOperation, b map[string]any) {
		if op.Resource == ledgerv1.SageResource_SAGE_RESOURCE_CONTACT {
			b["reference"] = strings.TrimSpace(inv.Customer.Email) // the obvious key: over 10 characters
		}
	}
	_, err := s.exec(w, naive)
	wantRefused(t, err, "reference")
	wantBooked(t, s, w, "21.60")

	// Collision: another customer already holds this guest's first candidate
	// (a 36-bit hash collides at scale). Naively the guest takes it anyway and
	// Sage refuses the contact; with the rule the claim in entity_xref moves
	// the guest to its next deterministic candidate.
	s2 := newSimSage(t, nil)
	other := fixtureInvoice(t, "guest_mixed_case_email")
	other.MagentoID, other.IncrementID, other.Customer.Email = 202, "000000202", "someone.else@example.com"
	cands := quirks.ReferenceCandidates(0, other.Customer.Email, "GBP", "GBP")
	holder := fixtureInvoice(t, "registered_customer")
	w0, err := s2.builder(s2.policy()).Invoice(t.Context(), holder)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.exec(w0, func(op *ledgerv1.SageOperation, b map[string]any) {
		if op.Resource == ledgerv1.SageResource_SAGE_RESOURCE_CONTACT {
			b["reference"] = cands[0] // the holder's contact carries the colliding reference
		}
	}); err != nil {
		t.Fatal(err)
	}
	naiveRef := func(op *ledgerv1.SageOperation, b map[string]any) {
		if op.Resource == ledgerv1.SageResource_SAGE_RESOURCE_CONTACT {
			b["reference"] = cands[0]
		}
	}
	w2 := quirkWrite(t, s2, other)
	if _, err := s2.exec(w2, naiveRef); err == nil || !strings.Contains(err.Error(), "already been taken") {
		t.Fatalf("naive collision: want 'Reference has already been taken', got %v", err)
	}
	other.MagentoID = 203 // a fresh invoice: its contact choice is not recorded yet
	s2.dir = &MemoryDirectory{}
	s2.dir.ClaimFor(Identity(holder.Customer)+"|GBP", cands[0])
	w3 := quirkWrite(t, s2, other)
	ref := w3.Operations[0].Reference
	if ref != cands[1] || len(ref) > 10 {
		t.Fatalf("collision: reference %q, want the second candidate %q", ref, cands[1])
	}
	wantBooked(t, s2, w3, "21.60")
	// Deterministic: mapping it again keeps the claimed reference.
	if again := quirkWrite(t, s2, other); again.Operations[0].Reference != ref {
		t.Fatalf("reference moved from %s to %s", ref, again.Operations[0].Reference)
	}
}

func TestQuirkS27ExchangeRate(t *testing.T) {
	t.Parallel()
	s := newSimSage(t, nil)
	w := quirkWrite(t, s, fixtureInvoice(t, "eur_invoice"))
	_, err := s.exec(w, onInvoice(func(b map[string]any) {
		eachLine(b, func(l map[string]any) { l["base_currency_net_amount"] = "30.00" })
	}))
	wantRefused(t, err, "line_items.base_currency_net_amount")
	hasQuirk(t, w, quirks.NameExchangeRate)
	d := wantBooked(t, s, w, "49.14")
	if !d.BaseCurrencyTotalAmount.Equal(money.MustParse("42.00")) { // 49.14 / 1.17
		t.Fatalf("base total %s, want 42.00", d.BaseCurrencyTotalAmount)
	}
}

func TestQuirkS28ContactCurrency(t *testing.T) {
	t.Parallel()
	s := newSimSage(t, nil)
	w := quirkWrite(t, s, fixtureInvoice(t, "eur_invoice"))
	_, err := s.exec(w, func(op *ledgerv1.SageOperation, b map[string]any) {
		if op.Resource == ledgerv1.SageResource_SAGE_RESOURCE_CONTACT {
			b["default_currency_id"] = b["currency_id"]
			delete(b, "currency_id")
		}
	})
	wantRefused(t, err, "currency_id")
	s2 := newSimSage(t, nil)
	w = quirkWrite(t, s2, fixtureInvoice(t, "eur_invoice"))
	hasQuirk(t, w, quirks.NameContactCurrency)
	wantBooked(t, s2, w, "49.14")
}

func TestQuirkS29ZeroRatedOutsideUK(t *testing.T) {
	t.Parallel()
	s := newSimSage(t, nil)
	inv := french(fixtureInvoice(t, "registered_customer"))
	w := quirkWrite(t, s, inv)
	// Naive: the lines keep Magento's UK rates and tax.
	pol := s.policy()
	_, err := s.exec(w, onInvoice(func(b map[string]any) {
		for i, l := range b["invoice_lines"].([]any) {
			if i < 2 {
				l.(map[string]any)["tax_rate_id"] = pol.DefaultTaxRateID
			}
		}
	}))
	wantRefused(t, err, "must be 'Zero Rated'")
	hasQuirk(t, w, quirks.NameZeroRatedOutside)
	wantBooked(t, s, w, "39.18")
}

func TestQuirkS30EUGoodsServices(t *testing.T) {
	t.Parallel()
	inv := french(fixtureInvoice(t, "registered_customer"))
	inv.Lines = append(inv.Lines, line("SUP", "Support plan", "virtual", "1", "10", "10", "2", "12"))
	inv.GrandTotal = amt("51.18")
	s := newSimSage(t, nil)
	w := quirkWrite(t, s, inv)
	_, err := s.exec(w, onInvoice(func(b map[string]any) { eachLine(b, func(l map[string]any) { delete(l, "eu_goods_services_type_id") }) }))
	wantRefused(t, err, "line_items.eu_goods_services_type_id")
	_, err = s.exec(w, onInvoice(func(b map[string]any) {
		lines := b["invoice_lines"].([]any)
		lines[len(lines)-2].(map[string]any)["eu_goods_services_type_id"] = "SERVICES" // the support plan as mapped
	}))
	wantRefused(t, err, "must be the same on every line")
	hasQuirk(t, w, quirks.NameEUGoodsServices)
	hasQuirk(t, w, quirks.NoteMixedEUCoerced)
	wantBooked(t, s, w, "51.18")
}

func TestQuirkS31ContactPerCurrency(t *testing.T) {
	t.Parallel()
	gbp := fixtureInvoice(t, "registered_customer")
	eur := fixtureInvoice(t, "eur_invoice")
	eur.Customer, eur.BillingAddress, eur.ShippingAddress = gbp.Customer, gbp.BillingAddress, gbp.ShippingAddress
	s := newSimSage(t, nil)
	wantBooked(t, s, quirkWrite(t, s, gbp), "39.18")
	// Naive: one Sage contact per customer, whatever the currency.
	w := quirkWrite(t, s, eur)
	hasQuirk(t, w, quirks.NameContactVariant)
	naive := proto.Clone(w).(*ledgerv1.SageWrite)
	naive.Operations[0].Currency = "GBP"
	_, err := s.exec(naive, nil)
	wantRefused(t, err, "currency_id")
	if w.Operations[0].Currency != "EUR" || w.Operations[0].Reference != "M42E" {
		t.Fatalf("variant: %s %s", w.Operations[0].Currency, w.Operations[0].Reference)
	}
	d := wantBooked(t, s, w, "49.14")
	if d.Currency.ID != "EUR" {
		t.Fatalf("currency %s", d.Currency.ID)
	}
}

func TestQuirkS32ShippingZeroRate(t *testing.T) {
	t.Parallel()
	s := newSimSage(t, nil)
	w := quirkWrite(t, s, fixtureInvoice(t, "untaxed_shipping"))
	ids, err := s.exec(w, onInvoice(func(b map[string]any) { b["shipping_tax_rate_id"] = "GB_STANDARD" }))
	if err != nil {
		t.Fatal(err)
	}
	if d := s.doc("sales_invoices", ids[KeyInvoice]); d.TotalAmount.Equal(money.MustParse("52.95")) {
		t.Fatalf("naive: Sage should add phantom shipping VAT, total %s", d.TotalAmount)
	}
	s2 := newSimSage(t, nil)
	w = quirkWrite(t, s2, fixtureInvoice(t, "untaxed_shipping"))
	hasQuirk(t, w, quirks.NameShippingZeroRate)
	wantBooked(t, s2, w, "52.95")
}
