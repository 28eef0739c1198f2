package mapper

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/policy"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

func TestMain(m *testing.M) { devtest.Main(m) }

// stack is one mapper running against real Postgres and NATS.
type stack struct {
	st *store.Store
	js jetstream.JetStream
}

// newInfra opens a fresh migrated database and a NATS server with Ledger's
// streams.
func newInfra(t *testing.T) (*store.Store, jetstream.JetStream) {
	t.Helper()
	ctx := t.Context()
	sealer, _ := secrets.NewRandomKeyRing()
	st, err := store.Open(ctx, devtest.Database(t), sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	nc, err := nats.Connect(devtest.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	return st, js
}

func newStack(t *testing.T) *stack {
	t.Helper()
	st, js := newInfra(t)
	svc, err := New(Config{Workers: 4, HTTPTimeout: 5 * time.Second}, st, js, telemetry.Discard())
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &stack{st: st, js: js}
}

// shop starts a simulated Magento paired with tenant, wrapped by mw (may be
// nil), and registers the tenant in Ledger with the fixture's policy.
func (s *stack) shop(t *testing.T, tenant string, mw func(http.Handler) http.Handler) *magentosim.Shop {
	t.Helper()
	ctx := t.Context()
	shop := magentosim.New(magentosim.Config{})
	var h http.Handler = shop.Handler()
	if mw != nil {
		h = mw(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	key := "byte8_lk_" + tenant + "_0123456789abcdef0123456789abcdef"
	if err := shop.Pair(magento.PairRequest{PairingCode: shop.GeneratePairingCode(), TenantID: tenant, APIKey: key,
		LedgerBaseURL: "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.st.CreateTenant(ctx, tenant, tenant); err != nil {
		t.Fatal(err)
	}
	if err := s.st.SetMagentoPaired(ctx, tenant, srv.URL, key); err != nil {
		t.Fatal(err)
	}
	var f fixture
	raw, _ := os.ReadFile(filepath.Join("testdata", "invoices", "registered_customer.json"))
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if err := s.st.SetPolicy(ctx, tenant, f.Policy); err != nil {
		t.Fatal(err)
	}
	return shop
}

// publish records a run the way ingest does and publishes its OutboxEvent.
func (s *stack) publish(t *testing.T, tenant, event string, id int64) string {
	t.Helper()
	ctx := t.Context()
	acc, err := s.st.AcceptWebhook(ctx, store.Delivery{TenantID: tenant, IdempotencyKey: event + ":" + itoa(id),
		Event: event, EntityType: magento.EntityType(event), MagentoEntityID: id}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ev := &ledgerv1.OutboxEvent{TenantId: tenant, Event: event, IdempotencyKey: event + ":" + itoa(id),
		SyncRunId: acc.RunID, MagentoEntityId: id, Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	if _, err := bus.Publish(ctx, s.js, bus.OutboxSubject(tenant, event), ev, "outbox:"+acc.RunID); err != nil {
		t.Fatal(err)
	}
	return acc.RunID
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// await waits until the last message on subject decodes into out and ok
// accepts it.
func await[T proto.Message](t *testing.T, js jetstream.JetStream, stream, subject string, out T, ok func(T) bool) T {
	t.Helper()
	ctx := t.Context()
	devtest.Eventually(t, "a matching message on "+subject, func() bool {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		m, err := st.GetLastMsgForSubject(ctx, subject)
		return err == nil && proto.Unmarshal(m.Data, out) == nil && ok(out)
	}, devtest.Explain(func() string { return fmt.Sprintf("last seen: %v", out) }))
	return out
}

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	s := newStack(t)

	t.Run("invoice.created publishes the SageWrite", func(t *testing.T) {
		t.Parallel()
		shop := s.shop(t, "t1", nil)
		_, inv := loadFixture(t, "registered_customer")
		if _, err := shop.CreateInvoice(inv.Invoice); err != nil {
			t.Fatal(err)
		}
		run := s.publish(t, "t1", "invoice.created", inv.MagentoID)
		w := await(t, s.js, bus.StreamSage, bus.SageSubject("t1", "invoice"), &ledgerv1.SageWrite{},
			func(w *ledgerv1.SageWrite) bool { return w.SyncRunId == run })
		if w.Event != "invoice.created" || !strings.HasPrefix(w.Traceparent, "00-0af7651916cd43dd") {
			t.Errorf("write header: %+v", w)
		}
		pol, _ := loadFixture(t, "registered_customer")
		expected, err := Builder{TenantID: "t1", Policy: pol, BaseCurrency: "GBP", Dir: &MemoryDirectory{}}.Invoice(t.Context(), inv)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := goldenView(t, w), goldenView(t, expected); string(got) != string(want) {
			t.Errorf("published write differs from the Builder's:\n%s", got)
		}
		if snap, err := s.st.PolicySnapshot(t.Context(), run); err != nil || !strings.Contains(string(snap), `"default_ledger_account_id"`) {
			t.Errorf("policy snapshot %s, %v", snap, err)
		}
		// The run page's documents: the invoice as fetched, the operations as
		// built with their bodies.
		m, err := s.st.RunMapping(t.Context(), run)
		var canonical map[string]Invoice
		var req struct {
			EntityType string `json:"entity_type"`
			Operations []struct {
				Operation struct {
					Key      string `json:"key"`
					Resource string `json:"resource"`
				} `json:"operation"`
				Body json.RawMessage `json:"body"`
			} `json:"operations"`
		}
		if err != nil || json.Unmarshal(m.Canonical, &canonical) != nil || json.Unmarshal(m.SageRequest, &req) != nil {
			t.Fatalf("run mapping %s / %s: %v", m.Canonical, m.SageRequest, err)
		}
		if canonical["invoice/42"].IncrementID != inv.IncrementID || len(req.Operations) != len(w.GetOperations()) || req.EntityType != w.GetEntityType() {
			t.Errorf("run mapping: canonical %s, request %s", m.Canonical, m.SageRequest)
		}
		for i, op := range req.Operations {
			if op.Operation.Key != w.GetOperations()[i].GetKey() || !jsonEqual(op.Body, w.GetOperations()[i].GetBody()) {
				t.Errorf("operation %d recorded as %s %s, built as %v", i, op.Operation.Key, op.Body, w.GetOperations()[i])
			}
		}
		attempts, err := s.st.Attempts(t.Context(), run)
		if err != nil || len(attempts) != 1 || attempts[0].HTTPStatus != 200 || attempts[0].Stage != "mapper" ||
			attempts[0].Path != "/rest/V1/byte8/invoice/42" {
			t.Errorf("attempts %+v, %v", attempts, err)
		}
	})

	t.Run("404 fails the run and dead-letters the event", func(t *testing.T) {
		t.Parallel()
		s.shop(t, "t404", nil)
		run := s.publish(t, "t404", "invoice.created", 999)
		res := await(t, s.js, bus.StreamResults, bus.ResultSubject("t404", "invoice"), &ledgerv1.SyncResult{},
			func(r *ledgerv1.SyncResult) bool { return r.SyncRunId == run })
		if res.Status != ledgerv1.SyncStatus_SYNC_STATUS_FAILED || res.ErrorCode != CodeEntityNotFound ||
			res.ErrorClass != ClassNotFound || !strings.Contains(res.Message, "invoice 999") {
			t.Errorf("result %+v", res)
		}
		dl := await(t, s.js, bus.StreamDLQ, bus.DLQSubject("mapper", "t404", "invoice"), &ledgerv1.DeadLetter{},
			func(d *ledgerv1.DeadLetter) bool { return d.SyncRunId == run })
		if dl.ErrorCode != CodeEntityNotFound || dl.ErrorClass != ClassNotFound || dl.HttpStatus != 404 ||
			dl.OriginalSubject != bus.OutboxSubject("t404", "invoice.created") {
			t.Errorf("dead letter %+v", dl)
		}
	})

	t.Run("5xx is redelivered and then succeeds", func(t *testing.T) {
		t.Parallel()
		var calls atomic.Int32
		shop := s.shop(t, "t5xx", func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Path, "/invoice/") && calls.Add(1) == 1 {
					http.Error(w, `{"message":"Internal Error."}`, http.StatusInternalServerError)
					return
				}
				next.ServeHTTP(w, r)
			})
		})
		_, inv := loadFixture(t, "untaxed_shipping")
		if _, err := shop.CreateInvoice(inv.Invoice); err != nil {
			t.Fatal(err)
		}
		run := s.publish(t, "t5xx", "invoice.created", inv.MagentoID)
		await(t, s.js, bus.StreamSage, bus.SageSubject("t5xx", "invoice"), &ledgerv1.SageWrite{},
			func(w *ledgerv1.SageWrite) bool { return w.SyncRunId == run })
		r, err := s.st.Run(t.Context(), run)
		if err != nil || r.Attempts != 2 || r.Status != store.RunRunning {
			t.Errorf("run %+v, %v", r, err)
		}
		attempts, _ := s.st.Attempts(t.Context(), run)
		if len(attempts) != 2 || attempts[0].HTTPStatus != 500 || attempts[0].Outcome != "retry" || attempts[1].HTTPStatus != 200 {
			t.Errorf("attempts %+v", attempts)
		}
	})

	t.Run("unsupported event is skipped", func(t *testing.T) {
		t.Parallel()
		s.shop(t, "tskip", nil)
		run := s.publish(t, "tskip", "shipment.created", 5)
		res := await(t, s.js, bus.StreamResults, bus.ResultSubject("tskip", "none"), &ledgerv1.SyncResult{},
			func(r *ledgerv1.SyncResult) bool { return r.SyncRunId == run })
		if res.Status != ledgerv1.SyncStatus_SYNC_STATUS_SKIPPED || res.SkipReason != SkipEventNotSupported ||
			!strings.Contains(res.Message, "does not sync") {
			t.Errorf("result %+v", res)
		}
	})

	t.Run("customer.upserted publishes a contact write", func(t *testing.T) {
		t.Parallel()
		shop := s.shop(t, "tcust", nil)
		c, err := shop.UpsertCustomer(magento.Contact{Email: "ann@example.com", FirstName: "Ann", LastName: "Lee",
			Addresses: []magento.Address{{Kind: "billing", Street: []string{"1 Road"}, City: "Leeds", CountryID: "GB"}}})
		if err != nil {
			t.Fatal(err)
		}
		run := s.publish(t, "tcust", "customer.upserted", c.MagentoID)
		w := await(t, s.js, bus.StreamSage, bus.SageSubject("tcust", "customer"), &ledgerv1.SageWrite{},
			func(w *ledgerv1.SageWrite) bool { return w.SyncRunId == run })
		if len(w.Operations) != 1 || w.ResultKey != KeyContact || w.Operations[0].Currency != "GBP" ||
			w.Operations[0].Reference != "M"+itoa(c.MagentoID) {
			t.Errorf("write %+v", w)
		}
	})

	t.Run("401 marks the binding token_revoked and holds the event", func(t *testing.T) {
		t.Parallel()
		s.shop(t, "t401", nil)
		// Ledger's copy of the key no longer matches the shop's.
		if err := s.st.SetMagentoPaired(t.Context(), "t401", mustTenant(t, s.st, "t401").Binding.MagentoBaseURL, "wrong-key"); err != nil {
			t.Fatal(err)
		}
		run := s.publish(t, "t401", "invoice.created", 1)
		devtest.Eventually(t, "the binding to be marked token_revoked", func() bool {
			return mustTenant(t, s.st, "t401").Binding.MagentoConnectionStatus == store.StatusTokenRevoked
		})
		var r store.Run
		devtest.Eventually(t, "the held run's error to be noted", func() bool {
			r, _ = s.st.Run(t.Context(), run)
			return r.Terminal() || r.ErrorClass == ClassAuth
		}, devtest.Explain(func() string { return fmt.Sprintf("run %+v", r) }))
		if r.Terminal() {
			t.Fatalf("run should be held, not finished: %+v", r)
		}
	})

	t.Run("invoice.paid, creditmemo.created and product.upserted fetch every shape", func(t *testing.T) {
		t.Parallel()
		shop := s.shop(t, "tdocs", nil)
		ctx := t.Context()
		pol, _ := loadFixture(t, "registered_customer")
		pol.PaymentMethodMap = map[string]string{"checkmo": "bank-1"}
		pol.SyncProducts, pol.PurchaseLedgerAccountID = true, "purchases-5000"
		if err := s.st.SetPolicy(ctx, "tdocs", pol.JSON()); err != nil {
			t.Fatal(err)
		}
		inv := fixtureInvoice(t, "registered_customer")
		if _, err := shop.CreateInvoice(inv.Invoice); err != nil {
			t.Fatal(err)
		}
		run := s.publish(t, "tdocs", EventInvoicePaid, inv.MagentoID)
		w := await(t, s.js, bus.StreamSage, bus.SageSubject("tdocs", "invoice"), &ledgerv1.SageWrite{},
			func(w *ledgerv1.SageWrite) bool { return w.SyncRunId == run })
		if len(w.Operations) != 3 || w.Operations[2].Key != KeyPayment || w.ResultKey != KeyInvoice ||
			!strings.Contains(string(w.Operations[2].Body), `"bank_account_id":"bank-1"`) {
			t.Errorf("payment write %s", goldenView(t, w))
		}
		cm, err := shop.CreateCreditMemoFrom(magentosim.CreditMemo{InvoiceID: &inv.MagentoID, WebsiteID: 1, Currency: "GBP",
			Customer: inv.Customer, Lines: inv.Lines[2:], AdjustmentNegative: amt("1.18"), GrandTotal: amt("8.00")})
		if err != nil {
			t.Fatal(err)
		}
		run = s.publish(t, "tdocs", EventCreditMemoCreated, cm.MagentoID)
		w = await(t, s.js, bus.StreamSage, bus.SageSubject("tdocs", "creditmemo"), &ledgerv1.SageWrite{},
			func(w *ledgerv1.SageWrite) bool { return w.SyncRunId == run })
		var keys []string
		for _, op := range w.Operations {
			keys = append(keys, op.Key)
		}
		if strings.Join(keys, ",") != "contact,invoice,payment,credit_note,refund" || w.ResultKey != KeyCreditNote {
			t.Errorf("credit memo write: %v", keys)
		}
		p, err := shop.UpsertProduct(magentosim.Product{SKU: "MUG", Name: "Mug&trade;", ProductType: "simple", ManageStock: true})
		if err != nil {
			t.Fatal(err)
		}
		run = s.publish(t, "tdocs", EventProductUpserted, p.MagentoID)
		w = await(t, s.js, bus.StreamSage, bus.SageSubject("tdocs", "product"), &ledgerv1.SageWrite{},
			func(w *ledgerv1.SageWrite) bool { return w.SyncRunId == run })
		if len(w.Operations) != 1 || w.Operations[0].Resource != ledgerv1.SageResource_SAGE_RESOURCE_PRODUCT {
			t.Errorf("product write %s", goldenView(t, w))
		}
	})

	t.Run("payment methods are fetched, inactive ones included", func(t *testing.T) {
		t.Parallel()
		s.shop(t, "tpm", nil)
		b := mustTenant(t, s.st, "tpm").Binding
		ms, err := PaymentMethods(t.Context(), &magento.Client{BaseURL: b.MagentoBaseURL, TenantID: "tpm", APIKey: b.APIKey})
		if err != nil || len(ms) < 5 {
			t.Fatalf("payment methods %+v, %v", ms, err)
		}
		inactive := false
		for _, m := range ms {
			inactive = inactive || !m.IsActive
		}
		if !inactive {
			t.Error("inactive methods must be listed too")
		}
	})

	t.Run("a message that is not an OutboxEvent is dead-lettered", func(t *testing.T) {
		t.Parallel()
		if _, err := s.js.Publish(t.Context(), bus.OutboxSubject("tbad", "invoice.created"), []byte("\xff\xff not proto")); err != nil {
			t.Fatal(err)
		}
		dl := await(t, s.js, bus.StreamDLQ, bus.DLQSubject("mapper", "", "none"), &ledgerv1.DeadLetter{},
			func(d *ledgerv1.DeadLetter) bool { return d.ErrorClass == ClassSerde })
		if dl.ErrorCode != CodeOutboxEventInvalid {
			t.Errorf("dead letter %+v", dl)
		}
	})
}

func mustTenant(t *testing.T, st *store.Store, id string) store.Tenant {
	t.Helper()
	tn, err := st.Tenant(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// TestEveryReasonAndCode drives each skip reason and the mapper's dead-letter
// codes through the real consumer (Postgres, JetStream, a simulated shop)
// and checks that each is on the run record and on the RESULTS message that
// statecallback mirrors into Magento's sync-state row (and, for failures, on
// the dead letter).
func TestEveryReasonAndCode(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	paid := func(method string) Invoice {
		inv := fixtureInvoice(t, "registered_customer")
		inv.PaymentMethod = method
		return inv
	}
	open := fixtureInvoice(t, "guest_mixed_case_email")
	zero := fixtureInvoice(t, "registered_customer")
	for i := range zero.Lines {
		zero.Lines[i].LineTax, zero.Lines[i].LineTotal, zero.Lines[i].TaxRate = amt("0"), amt("0"), nil
	}
	zero.ShippingAmount, zero.ShippingTaxAmount, zero.GrandTotal = amt("0"), amt("0"), amt("0")
	bad := fixtureInvoice(t, "registered_customer")
	bad.GrandTotal = amt("49.18")
	future := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		event    string
		invoice  *Invoice
		product  *magentosim.Product
		policy   func(p *policy.Policy)
		refs     map[string]string
		status   ledgerv1.SyncStatus
		reason   string
		code     string
		inDetail string
	}{
		{name: "event_not_supported", event: "order.placed", status: skipped, reason: SkipEventNotSupported},
		{name: "payment_method_not_mapped", event: EventInvoicePaid, invoice: ptr(paid("purchaseorder")),
			policy: func(p *policy.Policy) { p.PaymentMethodMap = map[string]string{"purchaseorder": ""} },
			status: skipped, reason: SkipPaymentMethodNotMapped, inDetail: "payment_method_map"},
		{name: "outside_sync_since", event: EventInvoiceCreated, invoice: ptr(fixtureInvoice(t, "registered_customer")),
			policy: func(p *policy.Policy) { p.SyncSince = &future }, status: skipped, reason: SkipOutsideSyncSince},
		{name: "zero_value_invoice", event: EventInvoiceCreated, invoice: &zero, status: skipped, reason: SkipZeroValueInvoice},
		{name: "unpaid_invoice_filtered", event: EventInvoiceCreated, invoice: &open,
			policy: func(p *policy.Policy) { p.SyncUnpaidInvoices = false }, status: skipped, reason: SkipUnpaidInvoiceFiltered},
		{name: "website_filtered", event: EventInvoiceCreated, invoice: ptr(fixtureInvoice(t, "registered_customer")),
			policy: func(p *policy.Policy) { p.WebsiteFilter = []int64{9} }, status: skipped, reason: SkipWebsiteFiltered},
		{name: "store_filtered", event: EventInvoiceCreated, invoice: ptr(fixtureInvoice(t, "registered_customer")),
			policy: func(p *policy.Policy) { p.StoreFilter = []int64{9} }, status: skipped, reason: SkipStoreFiltered},
		{name: "product_type_not_supported", event: EventProductUpserted,
			product: &magentosim.Product{SKU: "KIT", Name: "Kit", ProductType: "bundle"},
			policy:  func(p *policy.Policy) { p.SyncProducts = true }, status: skipped, reason: SkipProductTypeNotSupported},
		{name: "sync_filter_excluded", event: EventProductUpserted, product: &magentosim.Product{SKU: "MUG", Name: "Mug"},
			status: skipped, reason: SkipSyncFilterExcluded},
		{name: "ref_cache_stale", event: EventInvoiceCreated, invoice: ptr(fixtureInvoice(t, "registered_customer")),
			refs:   map[string]string{policy.RefLedgerAccounts: `[{"id":"another-account"}]`},
			status: failed, code: CodeRefCacheStale, inDetail: "default_ledger_account_id"},
		{name: "totals_mismatch", event: EventInvoiceCreated, invoice: &bad, status: failed, code: CodeTotalsMismatch},
		{name: "magento_entity_not_found", event: EventCreditMemoCreated, status: failed, code: CodeEntityNotFound},
		{name: "policy_invalid", event: EventInvoiceCreated, invoice: ptr(fixtureInvoice(t, "registered_customer")),
			policy: func(p *policy.Policy) { p.EUGoodsServicesDefault = "BOTH" }, status: failed, code: CodePolicyInvalid},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tenant := "r" + strconv.Itoa(i)
			shop := s.shop(t, tenant, nil)
			ctx := t.Context()
			if c.policy != nil {
				pol, _ := loadFixture(t, "registered_customer")
				c.policy(&pol)
				doc := pol.JSON()
				if err := s.st.SetPolicy(ctx, tenant, doc); err != nil {
					t.Fatal(err)
				}
			}
			for kind, doc := range c.refs {
				if err := s.st.SetRefCache(ctx, tenant, kind, []byte(doc)); err != nil {
					t.Fatal(err)
				}
			}
			id := int64(404)
			if c.invoice != nil {
				inv, err := shop.CreateInvoice(c.invoice.Invoice)
				if err != nil {
					t.Fatal(err)
				}
				id = inv.MagentoID
			}
			if c.product != nil {
				p, err := shop.UpsertProduct(*c.product)
				if err != nil {
					t.Fatal(err)
				}
				id = p.MagentoID
			}
			run := s.publish(t, tenant, c.event, id)
			entity := magento.EntityType(c.event)
			if entity == "" {
				entity = "none"
			}
			res := await(t, s.js, bus.StreamResults, bus.ResultSubject(tenant, entity), &ledgerv1.SyncResult{},
				func(r *ledgerv1.SyncResult) bool { return r.SyncRunId == run })
			if res.Status != c.status || res.SkipReason != c.reason || res.ErrorCode != c.code || !strings.Contains(res.Message, c.inDetail) {
				t.Fatalf("RESULTS message %+v", res)
			}
			r, err := s.st.Run(ctx, run)
			if err != nil || !r.Terminal() || r.SkipReason != c.reason || r.ErrorCode != c.code {
				t.Fatalf("run record %+v, %v", r, err)
			}
			if c.status == failed {
				dl := await(t, s.js, bus.StreamDLQ, bus.DLQSubject("mapper", tenant, entity), &ledgerv1.DeadLetter{},
					func(d *ledgerv1.DeadLetter) bool { return d.SyncRunId == run })
				if dl.ErrorCode != c.code {
					t.Fatalf("dead letter %+v", dl)
				}
			}
		})
	}
}

const (
	skipped = ledgerv1.SyncStatus_SYNC_STATUS_SKIPPED
	failed  = ledgerv1.SyncStatus_SYNC_STATUS_FAILED
)

func ptr[T any](v T) *T { return &v }

// jsonEqual reports whether two JSON documents have the same value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
