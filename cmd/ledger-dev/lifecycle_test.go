package main

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// TestMagentoLifecycle runs the operator side of the Magento binding against
// the whole stack: pairing, a disconnect from the shop (its Disconnect button)
// and from the operator (ledgerctl magento disconnect), re-pairing with fresh
// codes, the shop's backlog draining with no duplicate in Sage, a row retry
// re-firing the sync-state callback, and the sync-state backfill (complete,
// idempotent, resumable).
func TestMagentoLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("the lifecycle run is skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	st, _ := startStack(t, ctx, stack.Options{})
	defer st.Close()
	const tenant = "life-shop"
	if err := st.Onboard(ctx, tenant, "Lifecycle shop"); err != nil {
		t.Fatalf("onboarding: %v", err)
	}
	ops, stopOps, err := st.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer stopOps()
	biz := st.Sage.LeadBusinessID()
	rng := rand.New(rand.NewPCG(6, 2))

	seed := st.Shop.Seed(rng, magentosim.Options{Customers: 6, Invoices: 12, GuestShare: 0.3})
	expected := stack.ExpectSeed(seed)
	settle(t, ctx, st, expected, "the first sync")

	magentoStatus := func() (string, bool) {
		tn, err := st.Store.Tenant(ctx, tenant)
		if err != nil {
			t.Fatal(err)
		}
		return tn.Binding.MagentoConnectionStatus, tn.Binding.APIKey != ""
	}
	// newInvoices raises n invoices for the seeded customers; the shop queues
	// their events until it is connected.
	newInvoices := func(n int) {
		t.Helper()
		for i := range n {
			inv, err := st.Shop.CreateRandomInvoice(rng, seed.CustomerIDs[i%len(seed.CustomerIDs)], false)
			if err != nil {
				t.Fatal(err)
			}
			expected = append(expected, stack.Expected{EntityType: "invoice", MagentoID: inv.MagentoID, Status: "synced"})
		}
	}
	repair := func(what string) {
		t.Helper()
		resp, err := ops.ConnectMagento(ctx, &ledgerv1.ConnectMagentoRequest{TenantId: tenant, ShopUrl: st.ShopURL, PairingCode: st.Shop.GeneratePairingCode()})
		if err != nil {
			t.Fatalf("%s: re-pairing: %v", what, err)
		}
		if s := resp.GetTenant().GetMagentoConnectionStatus(); s != store.StatusActive {
			t.Fatalf("%s: after re-pairing Magento is %s", what, s)
		}
	}

	// Each step builds on the previous one's state.
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	step("disconnect from the shop, re-pair, backlog drains without duplicates", func(t *testing.T) {
		// Invoices raised while connected whose events the cron has not sent
		// yet when the merchant presses Disconnect: they stay pending (Magento
		// drops events raised while disconnected, so they must exist before).
		st.Shop.SetDown(true)
		newInvoices(5)
		if err := st.Shop.Disconnect(ctx); err != nil {
			t.Fatalf("the shop's disconnect call failed: %v", err)
		}
		st.Shop.SetDown(false)
		if s, keyKept := magentoStatus(); s != store.StatusRevoked || keyKept {
			t.Fatalf("after the shop's disconnect: status %s, key kept %t", s, keyKept)
		}
		if c := st.Shop.OutboxCounts(); c.Pending < 5 {
			t.Fatalf("the disconnected shop holds %d pending rows, want 5", c.Pending)
		}
		repair("shop-side disconnect")
		sum := settle(t, ctx, st, expected, "the backlog after re-pairing")
		if got := len(st.Sage.Invoices(biz)); got != len(invoicesOf(expected)) || sum.Duplicates != 0 {
			t.Fatalf("Sage holds %d invoices for %d Magento invoices, %d duplicates", got, len(invoicesOf(expected)), sum.Duplicates)
		}
	})

	step("disconnect by the operator, re-pair, no duplicates", func(t *testing.T) {
		dr, err := ops.DisconnectMagento(ctx, &ledgerv1.DisconnectMagentoRequest{TenantId: tenant})
		if err != nil || dr.GetTenant().GetMagentoConnectionStatus() != store.StatusRevoked {
			t.Fatalf("DisconnectMagento: %v %v", dr, err)
		}
		if s, keyKept := magentoStatus(); s != store.StatusRevoked || keyKept {
			t.Fatalf("after the operator's disconnect: status %s, key kept %t", s, keyKept)
		}
		// The operator also presses Disconnect in Magento; Ledger no longer
		// knows the shop's key, so the notification is refused (the shop
		// disconnects anyway).
		if err := st.Shop.Disconnect(ctx); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("the shop's notification after an operator disconnect: %v, want HTTP 401", err)
		}
		if st.Shop.Connected() {
			t.Fatal("the shop is still connected")
		}
		// A used code is refused with a message saying what to do.
		code := st.Shop.GeneratePairingCode()
		if _, err := ops.ConnectMagento(ctx, &ledgerv1.ConnectMagentoRequest{TenantId: tenant, ShopUrl: st.ShopURL, PairingCode: code}); err != nil {
			t.Fatalf("re-pairing: %v", err)
		}
		_, err = ops.ConnectMagento(ctx, &ledgerv1.ConnectMagentoRequest{TenantId: tenant, ShopUrl: st.ShopURL, PairingCode: code})
		if err == nil || !strings.Contains(err.Error(), "already used") {
			t.Fatalf("a reused code: %v", err)
		}
		newInvoices(4)
		sum := settle(t, ctx, st, expected, "the invoices after the operator re-paired")
		if got := len(st.Sage.Invoices(biz)); got != len(invoicesOf(expected)) || sum.Duplicates != 0 {
			t.Fatalf("Sage holds %d invoices for %d Magento invoices, %d duplicates", got, len(invoicesOf(expected)), sum.Duplicates)
		}
	})

	step("backfill pushes every succeeded run, twice is harmless, and resumes", func(t *testing.T) {
		// 600 invoices that synced "before the mirror existed": runs without
		// any sync-state row in the shop.
		const n, first = 600, 700_000
		from := time.Now().Add(-48 * time.Hour)
		if err := st.InsertSucceededRuns(ctx, tenant, "invoice", first, n, from); err != nil {
			t.Fatal(err)
		}
		since := timestamppb.New(from)
		req := &ledgerv1.BackfillSyncStateRequest{TenantId: tenant, EntityTypes: []string{"invoice", "creditmemo"}, Since: since, BatchSize: 50}
		msgs, err := backfill(ctx, ops, req)
		if err != nil {
			t.Fatalf("backfill: %v", err)
		}
		last := msgs[len(msgs)-1]
		total := last.GetTotal() // the 600 plus the shop's own invoices
		if !last.GetDone() || last.GetPushed() != total || total < n || last.GetFailed() != 0 {
			t.Fatalf("backfill ended with %v", last)
		}
		for id := int64(first); id < first+n; id++ {
			row, ok := st.Shop.SyncState("invoice", id)
			if !ok || row.SyncStatus != "synced" || row.ProviderEntityID == nil || *row.ProviderEntityID != "sage-"+strconv.FormatInt(id, 10) {
				t.Fatalf("invoice %d after the backfill: %+v (present %t)", id, row, ok)
			}
		}
		rows := len(st.Shop.SyncStates())

		// Twice: nothing new is published, nothing changes in the shop.
		msgs, err = backfill(ctx, ops, req)
		if err != nil {
			t.Fatalf("second backfill: %v", err)
		}
		if last := msgs[len(msgs)-1]; last.GetPushed() != 0 || last.GetSkipped() != total {
			t.Fatalf("second backfill: %v", last)
		}
		if got := len(st.Shop.SyncStates()); got != rows {
			t.Fatalf("the second backfill changed the shop's rows: %d, was %d", got, rows)
		}
		if st.SageDuplicates() != 0 {
			t.Fatal("the backfill touched Sage")
		}

		// Interrupted and resumed: 1,000 credit memo runs at 400 rows/s, cancelled
		// after 300; the resumed backfill starts after the last published
		// batch and redoes none.
		const m, next = 1000, 800_000
		from2 := time.Now().Add(-24 * time.Hour)
		if err := st.InsertSucceededRuns(ctx, tenant, "creditmemo", next, m, from2); err != nil {
			t.Fatal(err)
		}
		req2 := &ledgerv1.BackfillSyncStateRequest{TenantId: tenant, EntityTypes: []string{"creditmemo"}, Since: timestamppb.New(from2), BatchSize: 50, Rate: 400}
		cctx, ccancel := context.WithCancel(ctx)
		var seen int64
		stream, err := ops.BackfillSyncState(cctx, req2)
		if err != nil {
			t.Fatal(err)
		}
		for seen < 300 {
			msg, err := stream.Recv()
			if err != nil {
				t.Fatalf("interrupted backfill ended early: %v", err)
			}
			seen = msg.GetPushed()
		}
		ccancel()
		_, _ = stream.Recv()
		req2.Rate = 0
		var resumed []*ledgerv1.BackfillSyncStateResponse
		devtest.Eventually(t, "the resumed backfill", func() bool {
			// The server may still be finishing the cancelled call's batch.
			resumed, err = backfill(ctx, ops, req2)
			return err == nil
		}, devtest.Until(ctx))
		firstMsg, last := resumed[0], resumed[len(resumed)-1]
		if !strings.Contains(firstMsg.GetMessage(), "resuming") || firstMsg.GetPushed() < seen || firstMsg.GetPushed() >= m {
			t.Fatalf("the resumed backfill started with %v (had seen %d pushed)", firstMsg, seen)
		}
		if last.GetPushed()+last.GetSkipped() != m || last.GetSkipped() > 50 || last.GetTotal() != m {
			t.Fatalf("the resumed backfill ended with %v", last)
		}
		for id := int64(next); id < next+m; id++ {
			if row, ok := st.Shop.SyncState("creditmemo", id); !ok || row.SyncStatus != "synced" {
				t.Fatalf("credit memo %d after the resumed backfill: %+v (present %t)", id, row, ok)
			}
		}
	})

	step("row retry re-fires the sync-state callback", func(t *testing.T) {
		id := seed.InvoiceIDs[0]
		run, err := st.Store.LatestRun(ctx, tenant, "invoice", id)
		if err != nil || run.Status != store.RunSucceeded {
			t.Fatalf("latest run of invoice %d: %v %v", id, run.Status, err)
		}
		before, _ := st.Shop.SyncState("invoice", id)
		invoices := len(st.Sage.Invoices(biz))
		resp, err := ops.RetryRuns(ctx, &ledgerv1.RetryRunsRequest{SyncRunIds: []string{run.ID}})
		if err != nil || resp.GetRuns()[0].GetError() != "" {
			t.Fatalf("RetryRuns: %v %v", resp, err)
		}
		devtest.Eventually(t, "a newer sync state for the retried invoice", func() bool {
			row, ok := st.Shop.SyncState("invoice", id)
			return ok && row.LastSyncAt.After(before.LastSyncAt)
		}, devtest.Until(ctx))
		after, _ := st.Shop.SyncState("invoice", id)
		r, _ := st.Store.Run(ctx, run.ID)
		if after.SyncStatus != "synced" || r.Status != store.RunSucceeded || *after.ProviderEntityID != *before.ProviderEntityID {
			t.Fatalf("after the retry: row %+v, run %s", after, r.Status)
		}
		if got := len(st.Sage.Invoices(biz)); got != invoices || st.SageDuplicates() != 0 {
			t.Fatalf("the retry changed Sage: %d invoices (was %d), %d duplicates", got, invoices, st.SageDuplicates())
		}
	})
}

// settle waits for every expected entity to reach its state, with nothing
// pending, lost or duplicated.
func settle(t *testing.T, ctx context.Context, st *stack.Stack, expected []stack.Expected, what string) stack.Summary {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	sum := st.WaitSettled(wctx, expected)
	if !sum.OK() {
		t.Fatalf("%s did not settle: %+v", what, sum)
	}
	return sum
}

func invoicesOf(expected []stack.Expected) []stack.Expected {
	var out []stack.Expected
	for _, e := range expected {
		if e.EntityType == "invoice" {
			out = append(out, e)
		}
	}
	return out
}

// backfill runs one BackfillSyncState call to its end.
func backfill(ctx context.Context, c ledgerv1.AdminServiceClient, req *ledgerv1.BackfillSyncStateRequest) ([]*ledgerv1.BackfillSyncStateResponse, error) {
	stream, err := c.BackfillSyncState(ctx, req)
	if err != nil {
		return nil, err
	}
	var out []*ledgerv1.BackfillSyncStateResponse
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}
