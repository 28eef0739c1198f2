package main

// A stack with two tenants, each paired with its own simulated shop and
// connected to its own Sage user (so its own Sage business), seeded, with one
// failed run and dead letter each, settled. The secrets and the isolation
// tests start from it.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// rigTenant is one tenant of the rig and what it was seeded with.
type rigTenant struct {
	ID       string
	Shop     *magentosim.Shop
	ShopURL  string
	Business string // its Sage business
	Seed     magentosim.SeedResult
	// Doomed are credit memo ids enqueued without a credit memo in the shop:
	// the mapper's fetch gets 404, the run fails and is dead-lettered.
	Doomed []int64
	Extra  []int64 // invoices raised after the first settle
}

// expected is what the tenant's shop must end with.
func (r *rigTenant) expected() []stack.Expected {
	out := stack.ExpectSeed(r.Seed)
	for _, id := range r.Extra {
		out = append(out, stack.Expected{EntityType: "invoice", MagentoID: id, Status: "synced"})
	}
	for _, id := range r.Doomed {
		out = append(out, stack.Expected{EntityType: "creditmemo", MagentoID: id, Status: "failed"})
	}
	return out
}

// lockedLog collects every log line of the stack.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.buf.Bytes())
}

// twoTenantRig starts the stack with every component logging at DEBUG into
// logs, onboards tenant a with the stack's shop and Sage's default user and
// tenant b with a second shop and another Sage user, seeds both and waits
// until both have settled.
func twoTenantRig(t *testing.T, ctx context.Context, a, b string, logs io.Writer) (*stack.Stack, *rigTenant, *rigTenant) {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := stack.Start(ctx, stack.Options{StateDir: t.TempDir(), Log: log})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	t.Cleanup(st.Close)
	ta := &rigTenant{ID: a, Shop: st.Shop, ShopURL: st.ShopURL, Doomed: []int64{777}}
	tb := &rigTenant{ID: b, Doomed: []int64{778, 779}}
	if tb.Shop, tb.ShopURL, err = st.AddShop("magento-sim-"+b, magentosim.Config{
		DrainInterval: 500 * time.Millisecond,
		Backoff:       []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.OnboardShop(ctx, a, "Shop "+a, ta.Shop, ta.ShopURL, ""); err != nil {
		t.Fatalf("onboarding %s: %v", a, err)
	}
	if err := st.OnboardShop(ctx, b, "Shop "+b, tb.Shop, tb.ShopURL, b+"-owner"); err != nil {
		t.Fatalf("onboarding %s: %v", b, err)
	}
	for _, r := range []*rigTenant{ta, tb} {
		tn, err := st.Store.Tenant(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		r.Business = tn.Binding.SageBusinessID
	}
	if ta.Business == "" || ta.Business == tb.Business {
		t.Fatalf("the tenants' Sage businesses are %q and %q; want two different ones", ta.Business, tb.Business)
	}
	ta.Seed = ta.Shop.Seed(rand.New(rand.NewPCG(15, 1)), magentosim.Options{Customers: 4, Invoices: 6, GuestShare: 0.3})
	tb.Seed = tb.Shop.Seed(rand.New(rand.NewPCG(15, 2)), magentosim.Options{Customers: 3, Invoices: 5, GuestShare: 0.3})
	for _, r := range []*rigTenant{ta, tb} {
		for _, id := range r.Doomed {
			if err := r.Shop.Enqueue(magentosim.Event{Name: "creditmemo.created", IdempotencyKey: fmt.Sprintf("creditmemo.created:%d", id),
				MagentoEntityID: id, WebsiteID: 1, StoreID: 1, MirrorProvider: magento.ProviderSage}); err != nil {
				t.Fatal(err)
			}
		}
	}
	settleRig(t, ctx, ta, tb)
	return st, ta, tb
}

// raiseInvoices raises n more open invoices in the tenant's shop (open: a
// paid one may use a payment method the policy does not map, and be skipped).
func (r *rigTenant) raiseInvoices(t *testing.T, rng *rand.Rand, n int) {
	t.Helper()
	for i := range n {
		inv, err := r.Shop.CreateRandomInvoice(rng, r.Seed.CustomerIDs[i%len(r.Seed.CustomerIDs)], false)
		if err != nil {
			t.Fatal(err)
		}
		r.Extra = append(r.Extra, inv.MagentoID)
	}
}

// settleRig waits until each tenant's shop has drained its outbox (nothing
// dead-lettered in the shop) and every expected entity reached its state.
func settleRig(t *testing.T, ctx context.Context, tenants ...*rigTenant) {
	t.Helper()
	for _, r := range tenants {
		want := r.expected()
		rigEventually(t, ctx, r.ID+" settled", func() string {
			c := r.Shop.OutboxCounts()
			if c.Pending > 0 || c.DeadLettered > 0 {
				return fmt.Sprintf("outbox %+v", c)
			}
			for _, e := range want {
				row, ok := r.Shop.SyncState(e.EntityType, e.MagentoID)
				if !ok || row.SyncStatus != e.Status {
					return fmt.Sprintf("%s %d: %s (skip reason %s, error %s; present %v), want %s", e.EntityType, e.MagentoID,
						row.SyncStatus, deref(row.SkipReason), deref(row.ErrorCode), ok, e.Status)
				}
			}
			return ""
		})
	}
}

// rigEventually waits on devtest.Eventually until cond, which says what is
// still missing ("" once done), holds or ctx ends; a failure says what was
// missing last.
func rigEventually(t *testing.T, ctx context.Context, what string, cond func() string) {
	t.Helper()
	var missing string
	devtest.Eventually(t, what, func() bool { missing = cond(); return missing == "" },
		devtest.Until(ctx), devtest.Explain(func() string { return missing }))
}

// httpGet fetches url with optional headers and returns status and body.
func httpGet(t *testing.T, ctx context.Context, url string, header map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

// postWebhookAs posts an envelope to tenant's webhook URL with token.
func postWebhookAs(t *testing.T, ctx context.Context, ingestURL, tenant, event, key, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ingestURL+"/webhooks/magento/"+tenant+"/"+event, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	res, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}
