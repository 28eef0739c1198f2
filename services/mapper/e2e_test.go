package mapper

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

func newStack(t *testing.T) *stack {
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
	if _, err := bus.Publish(ctx, s.js, bus.OutboxSubject(tenant, event), ev, "outbox:"+acc.RunID, ev.Traceparent); err != nil {
		t.Fatal(err)
	}
	return acc.RunID
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// await polls the last message on subject until it decodes into out and ok
// accepts it.
func await[T proto.Message](t *testing.T, js jetstream.JetStream, stream, subject string, out T, ok func(T) bool) T {
	t.Helper()
	ctx := t.Context()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := js.Stream(ctx, stream); err == nil {
			if m, err := st.GetLastMsgForSubject(ctx, subject); err == nil {
				if err := proto.Unmarshal(m.Data, out); err == nil && ok(out) {
					return out
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no matching message on %s within 20s (last seen: %v)", subject, out)
	return out
}

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	s := newStack(t)

	t.Run("invoice.created publishes the SageWrite", func(t *testing.T) {
		t.Parallel()
		shop := s.shop(t, "t1", nil)
		_, inv := loadFixture(t, "registered_customer")
		if _, err := shop.CreateInvoice(inv); err != nil {
			t.Fatal(err)
		}
		run := s.publish(t, "t1", "invoice.created", inv.MagentoID)
		w := await(t, s.js, bus.StreamSage, bus.SageSubject("t1", "invoice"), &ledgerv1.SageWrite{},
			func(w *ledgerv1.SageWrite) bool { return w.SyncRunId == run })
		if w.Event != "invoice.created" || !strings.HasPrefix(w.Traceparent, "00-0af7651916cd43dd") {
			t.Errorf("write header: %+v", w)
		}
		want, err := os.ReadFile(filepath.Join("testdata", "golden", "registered_customer.json"))
		if err != nil {
			t.Fatal(err)
		}
		if got := goldenView(t, w); string(got) != string(want) {
			t.Errorf("published write differs from the golden file:\n%s", got)
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
		if _, err := shop.CreateInvoice(inv); err != nil {
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
		run := s.publish(t, "tskip", "product.upserted", 5)
		res := await(t, s.js, bus.StreamResults, bus.ResultSubject("tskip", "product"), &ledgerv1.SyncResult{},
			func(r *ledgerv1.SyncResult) bool { return r.SyncRunId == run })
		if res.Status != ledgerv1.SyncStatus_SYNC_STATUS_SKIPPED || res.SkipReason != SkipEventNotSupported ||
			!strings.Contains(res.Message, "not synced") {
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
		deadline := time.Now().Add(20 * time.Second)
		for mustTenant(t, s.st, "t401").Binding.MagentoConnectionStatus != store.StatusTokenRevoked {
			if time.Now().After(deadline) {
				t.Fatal("binding was not marked token_revoked")
			}
			time.Sleep(50 * time.Millisecond)
		}
		r, _ := s.st.Run(t.Context(), run)
		if r.Terminal() || r.ErrorClass != ClassAuth {
			t.Errorf("run should be held, not finished: %+v", r)
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
