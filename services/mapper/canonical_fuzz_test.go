package mapper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/sagewrite"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// The canonical-document targets decode Magento's answers as the mapper does
// (job.fetch: the Client reads the body into a json.RawMessage, then
// json.Unmarshal into the document), apply the policy's filters and build
// the SageWrite, with goldenPolicy. What must hold whatever Magento sends:
//
//   - a document that cannot be sent is a *Skip or a *Failure with a stable
//     code: never another error, which the handler would retry as transient;
//   - a built write is one the writer can execute (sagewrite.Run plans every
//     operation: known resources, JSON-object bodies, bindings to earlier
//     operations), its result key is one of its operations, and building it
//     again gives the same bytes (replays never duplicate anything in Sage);
//   - every sales document reaches Sage to the penny: each line's net is
//     what Sage computes from quantity × unit price less the discount, the
//     header sums its lines and shipping, and the total is Magento's
//     grand_total; references fit Sage's fields.

// fuzzBuilder is the builder of one execution.
func fuzzBuilder() Builder {
	return Builder{TenantID: "t", Policy: goldenPolicy(), BaseCurrency: "GBP", Dir: &MemoryDirectory{}}
}

// decodeCanonical decodes raw as job.fetch does; false when the mapper
// would fail the run with magento_response_invalid before building.
func decodeCanonical(raw []byte, out any) bool {
	var msg json.RawMessage
	if json.Unmarshal(raw, &msg) != nil {
		return false
	}
	return json.Unmarshal(msg, out) == nil
}

// FuzzInvoice is invoice.created: an invoice document.
func FuzzInvoice(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		var inv Invoice
		if !decodeCanonical(raw, &inv) {
			return
		}
		checkCanonicalRoundTrip(t, raw, &inv, &Invoice{})
		if sk := FilterInvoice(goldenPolicy(), inv); sk != nil {
			checkBuildError(t, sk)
			return
		}
		build := func() (*ledgerv1.SageWrite, error) { return fuzzBuilder().Invoice(context.Background(), inv) }
		w := checkBuilt(t, build)
		if w != nil {
			checkSalesDoc(t, w, KeyInvoice, "invoice_lines", inv.GrandTotal.Amount)
		}
	})
}

// FuzzPayment is invoice.paid: the invoice, then its payment document.
func FuzzPayment(f *testing.F) {
	f.Fuzz(func(t *testing.T, invoiceRaw, paymentRaw []byte) {
		var inv Invoice
		var pay Payment
		if !decodeCanonical(invoiceRaw, &inv) || !decodeCanonical(paymentRaw, &pay) {
			return
		}
		checkCanonicalRoundTrip(t, paymentRaw, &pay, &Payment{})
		pol := goldenPolicy()
		if sk := FilterPayment(pol, inv); sk != nil {
			checkBuildError(t, sk)
			return
		}
		if _, ok := pol.BankAccount(inv.PaymentMethod); !ok && inv.PaymentMethod != "" {
			return // skipped before the payment is fetched (job.build)
		}
		build := func() (*ledgerv1.SageWrite, error) { return fuzzBuilder().Payment(context.Background(), inv, pay) }
		w := checkBuilt(t, build)
		if w == nil {
			return
		}
		checkSalesDoc(t, w, KeyInvoice, "invoice_lines", inv.GrandTotal.Amount)
		var receipt SageContactPayment
		body := operationBody(t, w, KeyPayment, &receipt)
		if body == nil {
			t.Fatalf("invoice.paid write without a payment: %v", w)
		}
		if receipt.TotalAmount.Sign() <= 0 || len(receipt.AllocatedArtefacts) != 1 ||
			receipt.AllocatedArtefacts[0].Amount.Cmp(receipt.TotalAmount) > 0 || receipt.AllocatedArtefacts[0].Amount.Sign() <= 0 {
			t.Fatalf("receipt %s allocates more than it pays, or nothing", body)
		}
		checkDate(t, receipt.Date)
		checkRunes(t, "payment reference", receipt.Reference, MaxPaymentReference)
	})
}

// FuzzCreditMemo is creditmemo.created: the credit memo and, when it names
// one, its invoice.
func FuzzCreditMemo(f *testing.F) {
	f.Fuzz(func(t *testing.T, memoRaw, invoiceRaw []byte) {
		var cm CreditMemo
		if !decodeCanonical(memoRaw, &cm) {
			return
		}
		checkCanonicalRoundTrip(t, memoRaw, &cm, &CreditMemo{})
		var inv *Invoice
		if cm.InvoiceID != nil && *cm.InvoiceID > 0 {
			inv = &Invoice{}
			if !decodeCanonical(invoiceRaw, inv) {
				return
			}
		}
		if sk := FilterCreditMemo(goldenPolicy(), cm, inv, 1); sk != nil {
			checkBuildError(t, sk)
			return
		}
		build := func() (*ledgerv1.SageWrite, error) { return fuzzBuilder().CreditMemo(context.Background(), cm, inv) }
		w := checkBuilt(t, build)
		if w == nil {
			return
		}
		checkSalesDoc(t, w, KeyCreditNote, "credit_note_lines", cm.GrandTotal.Amount)
		if inv != nil {
			checkSalesDoc(t, w, KeyInvoice, "invoice_lines", inv.GrandTotal.Amount)
		}
	})
}

// FuzzCustomer is customer.upserted: a contact document.
func FuzzCustomer(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		var c magento.Contact
		if !decodeCanonical(raw, &c) {
			return
		}
		checkCanonicalRoundTrip(t, raw, &c, &magento.Contact{})
		if sk := FilterCustomer(goldenPolicy(), c.WebsiteID, c.MagentoID); sk != nil {
			checkBuildError(t, sk)
			return
		}
		build := func() (*ledgerv1.SageWrite, error) { return fuzzBuilder().Customer(context.Background(), c) }
		checkBuilt(t, build)
	})
}

// FuzzProduct is product.upserted with sync_products on: a product document.
func FuzzProduct(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		var p Product
		if !decodeCanonical(raw, &p) {
			return
		}
		checkCanonicalRoundTrip(t, raw, &p, &Product{})
		pol := goldenPolicy()
		pol.SyncProducts = true
		if sk := FilterProduct(pol, p); sk != nil {
			checkBuildError(t, sk)
			return
		}
		build := func() (*ledgerv1.SageWrite, error) {
			b := fuzzBuilder()
			b.Policy = pol
			return b.Product(context.Background(), p)
		}
		w := checkBuilt(t, build)
		if w == nil {
			return
		}
		var item SageCatalogItem
		key := KeyProduct
		if w.GetOperations()[0].GetKey() == KeyService {
			key = KeyService
		}
		body := operationBody(t, w, key, &item)
		for _, sp := range item.SalesPrices {
			if !sp.Price.Equal(sp.Price.Cents()) {
				t.Fatalf("price %s has more than two decimals: %s", sp.Price.Exact(), body)
			}
		}
	})
}

// roundTrip answers the Client from the fuzz input.
type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzPaymentMethods feeds GET /V1/byte8/payment-methods answers to
// PaymentMethods. A 404 (a module that predates the endpoint) is no methods;
// a 200 is the list, each element with its code, or an error that says what
// shape was expected; any other status is the Client's *HTTPError.
func FuzzPaymentMethods(f *testing.F) {
	f.Fuzz(func(t *testing.T, notFound bool, body []byte) {
		code := http.StatusOK
		if notFound {
			code = http.StatusNotFound
		}
		c := &magento.Client{BaseURL: "https://shop.example", TenantID: "t", APIKey: "k",
			HTTP: &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: code, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
			})}}
		methods, err := PaymentMethods(context.Background(), c)
		switch {
		case notFound:
			if err != nil || methods != nil {
				t.Fatalf("404 gave %v, %v; want no methods", methods, err)
			}
		case err != nil:
			var de *magento.DecodeError
			if !errors.As(err, &de) && !strings.Contains(err.Error(), "payment-methods is not a list") {
				t.Fatalf("%q: error %v does not say what was expected", body, err)
			}
		default:
			var list []json.RawMessage
			if len(bytes.TrimSpace(body)) > 0 && (json.Unmarshal(body, &list) != nil || len(list) != len(methods)) {
				t.Fatalf("%q decoded as %d methods", body, len(methods))
			}
		}
	})
}

// checkCanonicalRoundTrip: a decoded document encodes (as the Magento
// simulator serves it) and decodes back to the same encoding, so the
// simulator and the mapper agree on every field the mapper reads.
func checkCanonicalRoundTrip[T any](t *testing.T, raw []byte, doc *T, fresh *T) {
	t.Helper()
	enc, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("%q decodes but does not encode: %v", raw, err)
	}
	if err := json.Unmarshal(enc, fresh); err != nil {
		t.Fatalf("%q re-encodes as %s, which does not decode: %v", raw, enc, err)
	}
	if again, _ := json.Marshal(fresh); !bytes.Equal(again, enc) {
		t.Fatalf("%q: encoding is not stable:\n%s\n%s", raw, enc, again)
	}
}

var stableCode = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// checkBuildError: a refusal is a *Skip with a known reason or a *Failure
// with a class and a stable code, and a message.
func checkBuildError(t *testing.T, err error) {
	t.Helper()
	var sk *Skip
	var fl *Failure
	switch {
	case errors.As(err, &sk):
		if !slices.Contains(SkipReasons, sk.Reason) || sk.Message == "" {
			t.Fatalf("skip %+v", sk)
		}
	case errors.As(err, &fl):
		if fl.Class == "" || !stableCode.MatchString(fl.Code) || fl.Message == "" {
			t.Fatalf("failure %+v", fl)
		}
	default:
		t.Fatalf("refusal %v (%T) is neither a *Skip nor a *Failure: it would be retried as transient", err, err)
	}
}

// checkBuilt builds twice with fresh builders and checks the write; nil when
// the document was refused.
func checkBuilt(t *testing.T, build func() (*ledgerv1.SageWrite, error)) *ledgerv1.SageWrite {
	t.Helper()
	w, err := build()
	if err != nil {
		checkBuildError(t, err)
		return nil
	}
	w2, err := build()
	det := proto.MarshalOptions{Deterministic: true}
	b1, _ := det.Marshal(w)
	b2, _ := det.Marshal(w2)
	if err != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("building again gave another write (%v)", err)
	}
	if len(w.GetOperations()) == 0 {
		t.Fatalf("a write without operations")
	}
	keys := map[string]bool{}
	for _, op := range w.GetOperations() {
		if keys[op.GetKey()] {
			t.Fatalf("operation key %q twice", op.GetKey())
		}
		keys[op.GetKey()] = true
		if len(op.GetIdempotencyId()) != 32 {
			t.Fatalf("operation %q: idempotency_id %q", op.GetKey(), op.GetIdempotencyId())
		}
		if op.GetResource() == ledgerv1.SageResource_SAGE_RESOURCE_CONTACT {
			var c SageContact
			operationBody(t, w, op.GetKey(), &c)
			checkRunes(t, "contact name", c.Name, MaxContactName)
			if strings.TrimSpace(c.Name) == "" {
				t.Fatalf("contact %q without a name", op.GetKey())
			}
		}
	}
	if !keys[w.GetResultKey()] {
		t.Fatalf("result key %q is not an operation", w.GetResultKey())
	}
	ids, err := sagewrite.Run(context.Background(), w, &fuzzExecutor{})
	if err != nil || len(ids) != len(w.GetOperations()) {
		t.Fatalf("the writer cannot execute the write: %v", err)
	}
	return w
}

// fuzzExecutor creates every document with the id "id-<key>".
type fuzzExecutor struct{}

func (fuzzExecutor) Existing(context.Context, *ledgerv1.SageOperation) (string, bool, error) {
	return "", false, nil
}

func (fuzzExecutor) Create(_ context.Context, op *ledgerv1.SageOperation, req sagewrite.Request) (string, error) {
	if _, err := req.JSON(); err != nil {
		return "", err
	}
	return "id-" + op.GetKey(), nil
}

// Outstanding: every document has more outstanding than any receipt pays.
func (fuzzExecutor) Outstanding(context.Context, sagewrite.Resource, string) (money.Amount, error) {
	return money.MustParse("1000000000000"), nil
}

// operationBody decodes the body of the operation with key into out; nil when
// the write has no such operation.
func operationBody(t *testing.T, w *ledgerv1.SageWrite, key string, out any) []byte {
	t.Helper()
	for _, op := range w.GetOperations() {
		if op.GetKey() == key {
			if err := json.Unmarshal(op.GetBody(), out); err != nil {
				t.Fatalf("operation %q: body %s does not decode: %v", key, op.GetBody(), err)
			}
			return op.GetBody()
		}
	}
	return nil
}

// checkSalesDoc checks the sales invoice or credit note with key.
func checkSalesDoc(t *testing.T, w *ledgerv1.SageWrite, key, linesKey string, grand money.Amount) {
	t.Helper()
	var doc struct {
		Date      string            `json:"date"`
		Reference string            `json:"reference"`
		Exchange  money.Number      `json:"exchange_rate"`
		ShipNet   money.Amount      `json:"shipping_net_amount"`
		ShipTax   money.Amount      `json:"shipping_tax_amount"`
		Net       money.Amount      `json:"net_amount"`
		Tax       money.Amount      `json:"tax_amount"`
		Total     money.Amount      `json:"total_amount"`
		Lines     []SageInvoiceLine `json:"-"`
	}
	body := operationBody(t, w, key, &doc)
	if body == nil {
		t.Fatalf("write without %s: %v", key, w)
	}
	var lines map[string]json.RawMessage
	_ = json.Unmarshal(body, &lines)
	if err := json.Unmarshal(lines[linesKey], &doc.Lines); err != nil || len(doc.Lines) == 0 {
		t.Fatalf("%s: %s has no %s (%v)", key, body, linesKey, err)
	}
	checkDate(t, doc.Date)
	checkRunes(t, key+" reference", doc.Reference, MaxInvoiceReference)
	if doc.Exchange.Sign() <= 0 {
		t.Fatalf("%s: exchange_rate %s", key, doc.Exchange.Exact())
	}
	net, tax := doc.ShipNet, doc.ShipTax
	for i, l := range doc.Lines {
		discount := money.Zero
		if l.DiscountAmount != nil {
			discount = *l.DiscountAmount
		}
		if sage := l.Quantity.Mul(l.UnitPrice.Amount).Cents().Sub(discount); !sage.Equal(l.NetAmount) {
			t.Fatalf("%s line %d: Sage computes %s × %s − %s = %s, the line says net %s", key, i,
				l.Quantity.Exact(), l.UnitPrice.Exact(), discount, sage, l.NetAmount)
		}
		if !l.TotalAmount.Equal(l.NetAmount.Add(l.TaxAmount)) || !l.TaxAmount.Equal(l.CurrencyTaxAmount) {
			t.Fatalf("%s line %d: net %s + tax %s (currency tax %s) ≠ total %s", key, i, l.NetAmount, l.TaxAmount, l.CurrencyTaxAmount, l.TotalAmount)
		}
		if strings.TrimSpace(l.Description) == "" || !utf8.ValidString(l.Description) || l.TaxRateID == "" || l.LedgerAccountID == "" {
			t.Fatalf("%s line %d: %+v", key, i, l)
		}
		net, tax = net.Add(l.NetAmount), tax.Add(l.TaxAmount)
	}
	if !doc.Net.Equal(net) || !doc.Tax.Equal(tax) || !doc.Total.Equal(net.Add(tax)) {
		t.Fatalf("%s: header net %s tax %s total %s; the lines and shipping come to %s + %s", key, doc.Net, doc.Tax, doc.Total, net, tax)
	}
	if !doc.Total.Equal(grand.Cents()) {
		t.Fatalf("%s: Sage total %s, Magento grand_total %s", key, doc.Total, grand.Cents())
	}
}

func checkDate(t *testing.T, date string) {
	t.Helper()
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		t.Fatalf("date %q is not YYYY-MM-DD", date)
	}
}

func checkRunes(t *testing.T, what, s string, max int) {
	t.Helper()
	if n := utf8.RuneCountInString(s); n > max || !utf8.ValidString(s) {
		t.Fatalf("%s %q: %d characters, Sage takes %d", what, s, n, max)
	}
}
