package ingest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/telemetry"
	"github.com/ledgersync/ledger/services/ingest"
)

// touchCounter counts the shop-activity writes ingest makes.
type touchCounter struct {
	ingest.Store
	writes, tenants atomic.Int64
}

func (s *touchCounter) TouchShops(ctx context.Context, seen map[string]time.Time) error {
	s.writes.Add(1)
	s.tenants.Add(int64(len(seen)))
	return s.Store.TouchShops(ctx, seen)
}

// Recording the last delivery adds no write to an event: 60 deliveries (50
// new, 10 repeats) cost no shop-activity write until the flush, and one
// flush writes them in one statement.
func TestShopActivityCostsNoWritePerEvent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	st := &touchCounter{Store: f.st}
	svc, err := ingest.New(ingest.Config{ActivityFlushEvery: 50 * time.Millisecond}, st, f.js, telemetry.Discard())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	post := func(key string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/webhooks/magento/t1/invoice.created", strings.NewReader(envelope))
		req.Header.Set("Authorization", "Bearer "+token(t))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: status %d", key, res.StatusCode)
		}
	}
	for i := range 50 {
		post(fmt.Sprintf("invoice.created:%d", i))
	}
	for i := range 10 {
		post(fmt.Sprintf("invoice.created:%d", i)) // repeats
	}
	if n := st.writes.Load(); n != 0 {
		t.Fatalf("%d shop-activity writes on the request path, want 0", n)
	}
	if err := svc.FlushActivity(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := svc.FlushActivity(t.Context()); err != nil { // nothing new: no write
		t.Fatal(err)
	}
	if w, n := st.writes.Load(), st.tenants.Load(); w != 1 || n != 1 {
		t.Fatalf("%d writes for %d tenants, want one write for the one tenant", w, n)
	}

	// The component flushes on its own and once more when it stops.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = svc.RunActivityFlush(ctx) })
	post("invoice.created:100")
	devtest.Eventually(t, "the periodic flush", func() bool { return st.writes.Load() == 2 })
	post("invoice.created:101")
	cancel()
	wg.Wait()
	if n := st.writes.Load(); n != 3 {
		t.Fatalf("%d writes after stopping, want the last delivery flushed at shutdown (3)", n)
	}
}
