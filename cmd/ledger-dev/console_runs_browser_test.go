package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/policy"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// TestConsoleRunsAndDeadLettersInBrowser is the operator's troubleshooting
// story on the runs, run and dead-letter pages, in headless Chromium
// (browser_test.go): an invoice fails because the policy names a ledger
// account Sage does not have; the operator finds the failed run by filter,
// reads its cause and the catalogued fix, the mapping is corrected (here
// through the store; the policy form's own test does it in the browser),
// replays the dead letter after a preview, sees the run succeed and the
// shop's sync-state row turn synced, and deletes a dead letter that must
// never be replayed, confirming the count.
func TestConsoleRunsAndDeadLettersInBrowser(t *testing.T) {
	// Its own stack: it runs beside the other heavy end-to-end tests.
	t.Parallel()
	if testing.Short() {
		t.Skip("the browser run is skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	st, _ := startStack(t, ctx, stack.Options{})
	defer st.Close()
	const tenant = "runs-shop"
	if err := st.Onboard(ctx, tenant, "Runs shop"); err != nil {
		t.Fatalf("onboarding: %v", err)
	}

	// The broken mapping: every invoice line's ledger account is unknown to
	// Sage, so the mapper dead-letters the invoice (ref_cache_stale).
	var goodAccount string
	editPolicy(t, ctx, st, tenant, func(p *policy.Policy, _ []string) {
		goodAccount = p.DefaultLedgerAccountID
		p.DefaultLedgerAccountID = "no-such-ledger-account"
	})
	seed := st.Shop.Seed(rand.New(rand.NewPCG(9, 9)), magentosim.Options{Invoices: 1, GuestShare: 1, PaidShare: 0})
	invoice := seed.InvoiceIDs[0]
	// And a credit memo of an entity the shop does not have: dead-lettered
	// (magento_entity_not_found), never to be replayed.
	if err := st.Shop.Enqueue(magentosim.Event{Name: "creditmemo.created", IdempotencyKey: "creditmemo.created:777",
		MagentoEntityID: 777, WebsiteID: 1, StoreID: 1, MirrorProvider: magento.ProviderSage}); err != nil {
		t.Fatal(err)
	}
	admin, closeAdmin, err := st.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer closeAdmin()
	devtest.Eventually(t, "two dead letters of "+tenant, func() bool {
		return countDeadLetters(ctx, admin, tenant) == 2
	}, devtest.Until(ctx))

	b := startBrowser(t, ctx, st)
	b.Login()

	// Find the failed run by filter.
	b.Page("runs-failed", "/runs?tenant="+tenant+"&status=failed&error_code=ref_cache_stale", func(int) {
		b.WaitVisible(`#runs`)
		if got := b.Text(`#runs tbody`); !strings.Contains(got, "invoice.created") || !strings.Contains(got, "ref_cache_stale") {
			t.Fatalf("the filtered runs: %q", got)
		}
	})
	// An invalid filter value is named at its field.
	if code := b.Visit("/runs?tenant=" + tenant + "&since=yesterday"); code != 400 {
		t.Fatalf("an invalid since: HTTP %d, want 400", code)
	}
	b.WaitText(`#e-since`, "since")
	b.ExpectConsoleErrors("an invalid filter", regexp.MustCompile(`status of 400`))
	b.Visit("/runs?tenant=" + tenant + "&status=failed&error_code=ref_cache_stale")
	b.Submit(nil, `#runs tbody tr a`)
	b.WaitVisible(`#run-fields`)
	runPath := b.Location()

	// Its cause and the catalogued fix.
	b.Page("run-failed", runPath, func(int) {
		b.WaitText(`#run-code`, "ref_cache_stale")
		b.WaitText(`#catalogue`, "refdata refresh")
		b.WaitVisible(`#timeline`)
		if got := b.Text(`#catalogue`); !strings.Contains(got, "Means:") || !strings.Contains(got, "Fix:") {
			t.Fatalf("the catalogued fix: %q", got)
		}
	})

	// The fix: the mapping names a real ledger account again.
	editPolicy(t, ctx, st, tenant, func(p *policy.Policy, _ []string) { p.DefaultLedgerAccountID = goodAccount })

	// The dead-letter page: the banner, the group with its fix; select it,
	// preview, replay.
	b.Page("dead-letters", "/dead-letters?tenant="+tenant, func(int) {
		b.WaitText(`#banner`, "2 dead letters")
		b.WaitText(`#groups`, "ref_cache_stale")
	})
	b.Submit(nil, `#groups tr[data-code="ref_cache_stale"] a.button`)
	if loc := b.Location(); !strings.Contains(loc, "error_code=ref_cache_stale") || !strings.Contains(loc, "stage=mapper") {
		t.Fatalf("selecting the group led to %s", loc)
	}
	b.Submit(nil, `#preview-button`)
	b.WaitText(`#preview-count`, "1")
	b.Screenshot("dead-letters-preview")
	b.Submit(map[string]string{`#rate`: "5"}, `#replay-button`)
	b.WaitText(`#job`, "done")
	if got := b.Text(`#job`); !strings.Contains(got, "1 of 1 moved") {
		t.Fatalf("the replay job: %q", got)
	}
	b.Page("replay-job", b.Location(), nil)

	// The run succeeds and the shop's row turns synced.
	devtest.Eventually(t, "the invoice synced in the shop", func() bool {
		row, ok := st.Shop.SyncState("invoice", invoice)
		return ok && row.SyncStatus == "synced"
	}, devtest.Until(ctx))
	b.Page("run-succeeded", runPath, func(int) {
		b.WaitText(`#run-status`, "succeeded")
	})

	// The credit memo that will never exist: delete its dead letter,
	// confirming the count the page names.
	b.Visit("/dead-letters?tenant=" + tenant + "&error_code=magento_entity_not_found&preview=1#filter")
	b.WaitText(`#preview-count`, "1")
	b.Submit(nil, `#purge-button`)
	b.WaitText(`#confirm-purge`, "Delete 1 dead letters")
	// The confirmation answers a POST, so it is looked at in place (Page
	// would load it again with a GET).
	for _, w := range consoleWidths {
		b.SetWidth(w)
		b.Screenshot(fmt.Sprintf("purge-confirm-%d", w))
	}
	b.SetWidth(consoleWidths[0])
	b.NoConsoleErrors("the purge confirmation")
	b.Visit("/dead-letters?tenant=" + tenant + "&error_code=magento_entity_not_found&preview=1#filter")
	b.Submit(nil, `#purge-button`)
	b.Submit(nil, `#confirm-purge`)
	b.WaitText(`.flash`, "deleted 1 of 1 dead letters")
	if n := countDeadLetters(ctx, admin, tenant); n != 0 {
		t.Fatalf("%d dead letters of %s left", n, tenant)
	}
	b.Screenshot("dead-letters-empty")
	b.NoConsoleErrors("the runs and dead-letter story")
}

// countDeadLetters is how many dead letters of tenant the AdminService lists
// (-1 when it cannot say).
func countDeadLetters(ctx context.Context, admin ledgerv1.AdminServiceClient, tenant string) int {
	resp, err := admin.ListDeadLetters(ctx, &ledgerv1.ListDeadLettersRequest{Filter: &ledgerv1.DeadLetterFilter{TenantId: tenant}, Limit: 1000})
	if err != nil {
		return -1
	}
	return len(resp.GetDeadLetters())
}
