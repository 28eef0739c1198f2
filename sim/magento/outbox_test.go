package magentosim

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/magento"
)

func TestEnqueueBodyShapeAndDedup(t *testing.T) {
	clock := newClock()
	shop := newTestShop(t, clock)
	ev := Event{
		Name: "invoice.created", IdempotencyKey: "invoice.created:42", MagentoEntityID: 42, WebsiteID: 1, StoreID: 1,
		Payload: struct {
			IncrementID string `json:"increment_id"`
			Note        string `json:"note"`
		}{"000000042", "café/€ 😀 <b>&"},
	}
	if err := shop.Enqueue(ev); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("enqueue before pairing: got %v, want ErrNotConnected", err)
	}
	pair(t, shop, "https://ledger.example.com")
	if err := shop.Enqueue(ev); err != nil {
		t.Fatal(err)
	}
	want := `{"magento_entity_id":42,"website_id":1,"store_id":1,"occurred_at":"2026-04-29T10:11:12Z",` +
		`"payload":{"increment_id":"000000042","note":"caf\u00e9/\u20ac \ud83d\ude00 <b>&"}}`
	row, ok := shop.OutboxRowByKey("invoice.created:42")
	if !ok {
		t.Fatal("row missing")
	}
	if row.Payload != want {
		t.Fatalf("payload\n got %s\nwant %s", row.Payload, want)
	}
	if row.Status != StatusPending || row.Attempts != 0 || row.NextAttemptAt != nil || row.LastError == nil || *row.LastError != "" {
		t.Fatalf("fresh row = %+v", row)
	}

	// A second enqueue with the same key is a no-op whatever the status.
	clock.Advance(time.Minute)
	ev.Payload = map[string]int{"other": 1}
	if err := shop.Enqueue(ev); err != nil {
		t.Fatal(err)
	}
	if n := len(shop.Outbox()); n != 1 {
		t.Fatalf("rows after duplicate enqueue = %d", n)
	}
	if again, _ := shop.OutboxRowByKey("invoice.created:42"); again.Payload != want {
		t.Fatal("duplicate enqueue changed the stored body")
	}

	// No key: "{event}:" + sha1_hex(body); nil payload is {}.
	if err := shop.Enqueue(Event{Name: "heartbeat"}); err != nil {
		t.Fatal(err)
	}
	body := `{"magento_entity_id":0,"website_id":0,"store_id":0,"occurred_at":"2026-04-29T10:12:12Z","payload":{}}`
	sum := sha1.Sum([]byte(body))
	if _, ok := shop.OutboxRowByKey("heartbeat:" + hex.EncodeToString(sum[:])); !ok {
		t.Fatalf("derived key row missing: %+v", shop.Outbox())
	}
}

func TestMirrorNeverOverwritesTerminalStatus(t *testing.T) {
	clock := newClock()
	shop := newTestShop(t, clock)
	pair(t, shop, "https://ledger.example.com")
	inv, err := shop.CreateInvoice(magento.Invoice{State: InvoiceOpen, PaymentMethod: "checkmo"})
	if err != nil {
		t.Fatal(err)
	}
	st, ok := shop.SyncState("invoice", inv.MagentoID)
	if !ok || st.SyncStatus != SyncPending || !st.LastSyncAt.Equal(clock.Now()) {
		t.Fatalf("mirror row = %+v, %v", st, ok)
	}
	ref := "SI-1"
	if err := shop.UpsertSyncState(magento.SyncState{EntityType: "invoice", MagentoEntityID: inv.MagentoID, Provider: ProviderSage, SyncStatus: SyncSynced, ProviderReference: &ref}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if err := shop.PayInvoice(inv.MagentoID); err != nil {
		t.Fatal(err)
	}
	st, _ = shop.SyncState("invoice", inv.MagentoID)
	if st.SyncStatus != SyncSynced || st.ProviderReference == nil || *st.ProviderReference != "SI-1" || !st.LastSyncAt.Equal(clock.Now()) {
		t.Fatalf("terminal row after pending write-through = %+v", st)
	}
	// Events for ids <= 0 or unknown prefixes do not mirror.
	_ = shop.Enqueue(Event{Name: "order.placed", MagentoEntityID: 5, MirrorProvider: ProviderSage})
	_ = shop.Enqueue(Event{Name: "customer.upserted", IdempotencyKey: "c0", MirrorProvider: ProviderSage})
	if n := len(shop.SyncStates()); n != 1 {
		t.Fatalf("sync rows = %d", n)
	}
}

func TestObserversEnqueueExpectedEvents(t *testing.T) {
	clock := newClock()
	shop := newTestShop(t, clock)
	// Not connected: entities are saved, no events.
	if _, err := shop.CreateInvoice(magento.Invoice{State: InvoicePaid}); err != nil {
		t.Fatal(err)
	}
	if n := len(shop.Outbox()); n != 0 {
		t.Fatalf("events before pairing: %d", n)
	}
	pair(t, shop, "https://ledger.example.com")
	inv, _ := shop.CreateInvoice(magento.Invoice{State: InvoicePaid, WebsiteID: 1, StoreID: 2})
	cust, _ := shop.UpsertCustomer(magento.Contact{Email: "a@example.com", WebsiteID: 3})
	prod, _ := shop.UpsertProduct(Product{SKU: "X"})
	cancelled, _ := shop.CreateInvoice(magento.Invoice{State: InvoiceCancelled})
	_ = cancelled
	want := map[string]string{
		fmt.Sprintf("invoice.created:%d", inv.MagentoID):    `{"magento_entity_id":2,"website_id":1,"store_id":2,"occurred_at":"2026-04-29T10:11:12Z","payload":{"increment_id":"000000002","paid":true}}`,
		fmt.Sprintf("invoice.paid:%d", inv.MagentoID):       `{"magento_entity_id":2,"website_id":1,"store_id":2,"occurred_at":"2026-04-29T10:11:12Z","payload":{"increment_id":"000000002"}}`,
		fmt.Sprintf("customer.upserted:%d", cust.MagentoID): `{"magento_entity_id":1,"website_id":3,"store_id":0,"occurred_at":"2026-04-29T10:11:12Z","payload":{}}`,
		fmt.Sprintf("product.upserted:%d", prod.MagentoID):  `{"magento_entity_id":1,"website_id":0,"store_id":0,"occurred_at":"2026-04-29T10:11:12Z","payload":{}}`,
	}
	rows := shop.Outbox()
	if len(rows) != len(want) {
		t.Fatalf("rows = %+v", rows)
	}
	for _, r := range rows {
		if want[r.IdempotencyKey] != r.Payload {
			t.Errorf("%s: got %s want %s", r.IdempotencyKey, r.Payload, want[r.IdempotencyKey])
		}
	}
	if rows[0].EventName != "invoice.created" || rows[1].EventName != "invoice.paid" {
		t.Errorf("created must be enqueued before paid: %s, %s", rows[0].EventName, rows[1].EventName)
	}
	// A re-save of the customer is dropped while the row exists.
	_, _ = shop.UpsertCustomer(cust)
	if n := len(shop.Outbox()); n != 4 {
		t.Fatalf("re-save enqueued: %d rows", n)
	}
}

func TestDrainSuccess(t *testing.T) {
	clock := newClock()
	ledger := newFakeLedger(t)
	shop := newTestShop(t, clock)
	code := shop.GeneratePairingCode()
	tenant := "ten ant/ü"
	if err := shop.Pair(magento.PairRequest{PairingCode: code, TenantID: tenant, APIKey: testKey, LedgerBaseURL: ledger.URL + "/prefix//"}); err != nil {
		t.Fatal(err)
	}
	inv, _ := shop.CreateInvoice(magento.Invoice{State: InvoicePaid})
	if n := shop.DrainOnce(bg()); n != 2 {
		t.Fatalf("attempted = %d", n)
	}
	calls := ledger.Calls()
	if len(calls) != 2 {
		t.Fatalf("calls = %d", len(calls))
	}
	rows := shop.Outbox()
	for i, c := range calls {
		wantPath := "/prefix/webhooks/magento/ten%20ant%2F%C3%BC/" + rows[i].EventName
		if c.Method != http.MethodPost || c.RawPath != wantPath {
			t.Errorf("call %d: %s %s, want POST %s", i, c.Method, c.RawPath, wantPath)
		}
		if c.Body != rows[i].Payload {
			t.Errorf("call %d body %q != stored %q", i, c.Body, rows[i].Payload)
		}
		if c.Header.Get("Content-Type") != "application/json" || c.Header.Get("Idempotency-Key") != rows[i].IdempotencyKey {
			t.Errorf("call %d headers %v", i, c.Header)
		}
		raw, ok := strings.CutPrefix(c.Header.Get("Authorization"), "Bearer ")
		if !ok {
			t.Fatalf("no bearer: %v", c.Header)
		}
		tok, err := magento.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := magento.VerifyOutbound(tok, testKey, tenant, clock.Now()); err != nil {
			t.Errorf("outbound token: %v", err)
		}
	}
	if calls[0].Header.Get("Authorization") == calls[1].Header.Get("Authorization") {
		t.Error("token reused across attempts")
	}
	for _, r := range shop.Outbox() {
		if r.Status != StatusSucceeded || r.Attempts != 1 || r.LastStatusCode == nil || *r.LastStatusCode != 202 ||
			r.LastError != nil || r.NextAttemptAt != nil || r.LastAttemptAt == nil || !r.LastAttemptAt.Equal(clock.Now()) {
			t.Errorf("row after 2xx = %+v", r)
		}
	}
	if c := shop.OutboxCounts(); c.Succeeded != 2 || c.Total() != 2 {
		t.Errorf("counts = %+v", c)
	}
	if shop.DrainOnce(bg()) != 0 {
		t.Error("succeeded rows drained again")
	}
	_ = inv
}

func TestDrain4xxDeadLetters(t *testing.T) {
	clock := newClock()
	ledger := newFakeLedger(t)
	shop := newTestShop(t, clock)
	pair(t, shop, ledger.URL)
	long := strings.Repeat("x", 9000)
	ledger.setRespond(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "invoice.created") {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(long))
			return
		}
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":"slow down"}`))
	})
	_, _ = shop.CreateInvoice(magento.Invoice{State: InvoicePaid})
	shop.DrainOnce(bg())
	rows := shop.Outbox()
	wantErr := []string{"HTTP 422: " + long[:8192] + "…[truncated]", `HTTP 429: {"error":"slow down"}`}
	wantCode := []int{422, 429}
	for i, r := range rows {
		if r.Status != StatusDeadLettered || r.Attempts != 1 || r.LastStatusCode == nil || *r.LastStatusCode != wantCode[i] ||
			r.LastError == nil || *r.LastError != wantErr[i] || r.NextAttemptAt != nil {
			t.Errorf("row %d after 4xx = %+v", i, r)
		}
	}
	if shop.DrainOnce(bg()) != 0 {
		t.Error("dead-lettered rows were retried")
	}
}

func TestDrainTransientBackoffAndExhaustion(t *testing.T) {
	clock := newClock()
	ledger := newFakeLedger(t)
	shop := newTestShop(t, clock)
	pair(t, shop, ledger.URL)
	ledger.setRespond(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	if err := shop.Enqueue(Event{Name: "invoice.created", IdempotencyKey: "k", MagentoEntityID: 1}); err != nil {
		t.Fatal(err)
	}
	url := ledger.URL + "/webhooks/magento/" + testTenant + "/invoice.created"
	wantMsg := "Byte8 returned HTTP 503 from " + url + "; will retry."
	waits := []int{60, 300, 1800, 7200, 21600, 43200, 86400, 86400, 86400}
	for n := 1; n <= 9; n++ {
		if got := shop.DrainOnce(bg()); got != 1 {
			t.Fatalf("failure %d: attempted %d", n, got)
		}
		r := shop.Outbox()[0]
		wantNext := clock.Now().Add(time.Duration(waits[n-1]) * time.Second)
		if r.Status != StatusPending || r.Attempts != n || r.LastStatusCode != nil || r.LastError == nil ||
			*r.LastError != wantMsg || r.NextAttemptAt == nil || !r.NextAttemptAt.Equal(wantNext) {
			t.Fatalf("after failure %d: %+v (next %v)", n, r, r.NextAttemptAt)
		}
		// Not due yet.
		clock.Advance(time.Duration(waits[n-1])*time.Second - time.Second)
		if shop.DrainOnce(bg()) != 0 {
			t.Fatalf("failure %d: retried before next_attempt_at", n)
		}
		clock.Advance(time.Second)
	}
	if shop.DrainOnce(bg()) != 1 {
		t.Fatal("10th attempt not made")
	}
	r := shop.Outbox()[0]
	want := "transient_exhausted: retries capped at MAX_TRANSIENT_ATTEMPTS without success — last error: " + wantMsg
	if r.Status != StatusDeadLettered || r.Attempts != 10 || r.LastStatusCode != nil || r.LastError == nil || *r.LastError != want || r.NextAttemptAt != nil {
		t.Fatalf("after 10th failure: %+v", r)
	}
	if got := len(ledger.Calls()); got != 10 {
		t.Fatalf("ledger saw %d attempts", got)
	}
}

func TestDrainRedirectIsTransientAndNotFollowed(t *testing.T) {
	clock := newClock()
	ledger := newFakeLedger(t)
	shop := newTestShop(t, clock)
	pair(t, shop, ledger.URL)
	ledger.setRespond(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	_ = shop.Enqueue(Event{Name: "customer.upserted", IdempotencyKey: "k", MagentoEntityID: 1})
	shop.DrainOnce(bg())
	if n := len(ledger.Calls()); n != 1 {
		t.Fatalf("redirect followed: %d calls", n)
	}
	r := shop.Outbox()[0]
	want := "Byte8 returned HTTP 302 from " + ledger.URL + "/webhooks/magento/" + testTenant + "/customer.upserted; will retry."
	if r.Status != StatusPending || r.Attempts != 1 || r.LastStatusCode != nil || *r.LastError != want {
		t.Fatalf("row after 302 = %+v", r)
	}
}

func TestDrainNetworkError(t *testing.T) {
	clock := newClock()
	ledger := newFakeLedger(t)
	base := ledger.URL
	ledger.Close()
	shop := newTestShop(t, clock)
	pair(t, shop, base)
	_ = shop.Enqueue(Event{Name: "invoice.paid", IdempotencyKey: "k", MagentoEntityID: 1})
	shop.DrainOnce(bg())
	r := shop.Outbox()[0]
	prefix := "Network error publishing to Byte8 (" + base + "/webhooks/magento/" + testTenant + "/invoice.paid): "
	if r.Status != StatusPending || r.Attempts != 1 || r.LastError == nil || !strings.HasPrefix(*r.LastError, prefix) || len(*r.LastError) == len(prefix) {
		t.Fatalf("row after network error = %+v / %q", r, *r.LastError)
	}
}

func TestDrainPausesWhenDisconnectedOrDown(t *testing.T) {
	clock := newClock()
	ledger := newFakeLedger(t)
	shop := newTestShop(t, clock)
	pair(t, shop, ledger.URL)
	_ = shop.Enqueue(Event{Name: "invoice.paid", IdempotencyKey: "k", MagentoEntityID: 1})
	shop.SetDown(true)
	if shop.DrainOnce(bg()) != 0 {
		t.Fatal("drained while down")
	}
	shop.SetDown(false)
	if err := shop.Disconnect(bg()); err != nil {
		t.Fatal(err)
	}
	if shop.DrainOnce(bg()) != 0 {
		t.Fatal("drained while disconnected")
	}
	// The pending row survives and goes out after re-pairing (wire §9.12).
	pair(t, shop, ledger.URL)
	if shop.DrainOnce(bg()) != 1 {
		t.Fatal("row not drained after re-pair")
	}
}

func TestRequeueAndGC(t *testing.T) {
	clock := newClock()
	ledger := newFakeLedger(t)
	shop := newTestShop(t, clock)
	pair(t, shop, ledger.URL)
	ledger.setRespond(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) })
	_ = shop.Enqueue(Event{Name: "invoice.created", IdempotencyKey: "a", MagentoEntityID: 1})
	_ = shop.Enqueue(Event{Name: "invoice.created", IdempotencyKey: "b", MagentoEntityID: 2})
	shop.DrainOnce(bg())

	var re *RequeueError
	if err := shop.Requeue(99); !errors.As(err, &re) || !errors.Is(err, ErrNotFound) || err.Error() != "Outbox row 99 not found." {
		t.Fatalf("requeue missing: %v", err)
	}
	if err := shop.Requeue(1); err != nil {
		t.Fatal(err)
	}
	r := shop.Outbox()[0]
	if r.Status != StatusPending || r.Attempts != 0 || r.NextAttemptAt != nil || r.LastStatusCode == nil || *r.LastStatusCode != 400 || *r.LastError != "HTTP 400: " || r.LastAttemptAt == nil {
		t.Fatalf("requeued row = %+v", r)
	}
	if err := shop.Requeue(1); err == nil || err.Error() != "Outbox row 1 is status=pending (not dead_lettered) — nothing to do." {
		t.Fatalf("requeue pending: %v", err)
	}
	if n := shop.RequeueAll(); n != 1 {
		t.Fatalf("RequeueAll = %d", n)
	}

	ledger.setRespond(nil)
	shop.DrainOnce(bg())
	clock.Advance(30 * 24 * time.Hour)
	if n := shop.GC(30 * 24 * time.Hour); n != 0 {
		t.Fatalf("GC at exactly 30 days deleted %d", n)
	}
	_ = shop.Enqueue(Event{Name: "invoice.created", IdempotencyKey: "c", MagentoEntityID: 3}) // pending: kept
	clock.Advance(time.Second)
	if n := shop.GC(30 * 24 * time.Hour); n != 2 {
		t.Fatalf("GC deleted %d, want 2", n)
	}
	// After GC the same key can be enqueued again.
	_ = shop.Enqueue(Event{Name: "invoice.created", IdempotencyKey: "a", MagentoEntityID: 1})
	if c := shop.OutboxCounts(); c.Pending != 2 || c.Total() != 2 {
		t.Fatalf("counts after GC = %+v", c)
	}
}

func TestPHPEscape(t *testing.T) {
	in := []byte(`{"a":"x/y é 😀 <>&'"}`)
	if got, want := string(phpEscape(in, true)), `{"a":"x\/y \u00e9 \ud83d\ude00 <>&'"}`; got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	if got := string(phpEscape(in, false)); !strings.Contains(got, "x/y") {
		t.Fatalf("slashes escaped with JSON_UNESCAPED_SLASHES: %s", got)
	}
}

func TestRunDrainsConcurrentWrites(t *testing.T) {
	ledger := newFakeLedger(t)
	shop := New(Config{DrainInterval: 5 * time.Millisecond})
	pair(t, shop, ledger.URL)
	ctx, cancel := context.WithCancel(bg())
	done := make(chan error, 1)
	go func() { done <- shop.Run(ctx) }()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 0))
			for range 10 {
				if _, err := shop.CreateRandomInvoice(rng, 0, true); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for shop.OutboxCounts().Succeeded != 80 {
		if time.Now().After(deadline) {
			t.Fatalf("not drained: %+v", shop.OutboxCounts())
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // polling interval, not an assertion
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
