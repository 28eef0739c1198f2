package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// TestLedgerctlEndToEnd runs every ledgerctl command, as built from
// cmd/ledgerctl, against a running stack with --output json, and parses what
// it prints (protojson of the AdminService's responses; streams one object a
// line) instead of grepping it. The list of commands comes from the binary's
// own command tree (cobra's __complete answers it): a command without a case
// here fails the test.
func TestLedgerctlEndToEnd(t *testing.T) {
	// Its own stack: it runs beside the other heavy end-to-end tests.
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end; skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	started := time.Now()

	// Build ledgerctl while the stack starts.
	bin := filepath.Join(t.TempDir(), "ledgerctl")
	built := make(chan error, 1)
	go func() {
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ledgersync/ledger/cmd/ledgerctl").CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, out)
		}
		built <- err
	}()
	st, _ := startStack(t, ctx, stack.Options{})
	defer st.Close()
	if err := <-built; err != nil {
		t.Fatalf("building ledgerctl: %v", err)
	}
	ctl := &ledgerctlE2E{bin: bin, ctx: ctx, covered: map[string]bool{},
		env: append(os.Environ(), "LEDGER_ADMIN_ADDR="+st.AdminGRPCAddr, "LEDGER_ADMIN_TOKEN="+st.AdminToken, "LEDGER_ADMIN_TLS=false")}
	t.Logf("stack and ledgerctl ready in %s", time.Since(started).Round(time.Millisecond))

	const tenant = "cli-shop"
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("tenants create, magento connect, sage connect, tenants list", func(t *testing.T) {
		var created ledgerv1.CreateTenantResponse
		ctl.json(t, &created, "tenants", "create", "--id", tenant, "--name", "CLI shop")
		if tn := created.GetTenant(); tn.GetTenantId() != tenant || tn.GetName() != "CLI shop" || tn.GetSageStatus() != "not_connected" {
			t.Fatalf("created %v", tn)
		}
		var paired ledgerv1.ConnectMagentoResponse
		ctl.json(t, &paired, "magento", "connect", "--tenant", tenant, "--shop", st.ShopURL, "--code", st.Shop.GeneratePairingCode())
		if s := paired.GetTenant().GetMagentoConnectionStatus(); s != "active" {
			t.Fatalf("after magento connect Magento is %q", s)
		}
		var start ledgerv1.StartSageConnectResponse
		ctl.json(t, &start, "sage", "connect", "--tenant", tenant)
		// The browser's part: the simulator approves and redirects to the
		// admin's callback, which stores the tokens.
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, start.GetAuthorizeUrl(), nil)
		if err != nil {
			t.Fatalf("authorize URL %q: %v", start.GetAuthorizeUrl(), err)
		}
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the Sage authorization ended with HTTP %d", resp.StatusCode)
		}
		var list ledgerv1.ListTenantsResponse
		ctl.json(t, &list, "tenants", "list")
		i := slices.IndexFunc(list.GetTenants(), func(x *ledgerv1.Tenant) bool { return x.GetTenantId() == tenant })
		if i < 0 || list.GetTenants()[i].GetSageStatus() != "active" || list.GetTenants()[i].GetMagentoBaseUrl() != st.ShopURL {
			t.Fatalf("tenants list: %v", list.GetTenants())
		}
	})

	// Work for the other commands: three invoices that sync, and three credit
	// memo events for documents the shop does not have (magento_entity_not_found,
	// dead-lettered at once).
	rng := rand.New(rand.NewPCG(9, 9))
	seed := st.Shop.Seed(rng, magentosim.Options{Customers: 2, Invoices: 3})
	settle(t, ctx, st, stack.ExpectSeed(seed), "the seeded invoices")
	missing := []int64{9001, 9002, 9003}
	for _, id := range missing {
		if err := st.Shop.Enqueue(magentosim.Event{Name: "creditmemo.created", IdempotencyKey: "creditmemo.created:" + strconv.FormatInt(id, 10),
			MagentoEntityID: id, WebsiteID: 1, StoreID: 1, MirrorProvider: magento.ProviderSage}); err != nil {
			t.Fatal(err)
		}
	}
	var dead ledgerv1.ListDeadLettersResponse
	devtest.Eventually(t, "three dead letters listed by ledgerctl dlq list", func() bool {
		ctl.json(t, &dead, "dlq", "list", "--tenant", tenant, "--code", "magento_entity_not_found", "--stage", "mapper")
		return len(dead.GetDeadLetters()) == len(missing)
	}, devtest.Until(ctx), devtest.Explain(func() string { return protojson.Format(&dead) }))

	runOf := map[int64]string{} // credit memo id → its run
	step("runs list: filters and paging", func(t *testing.T) {
		for _, id := range missing {
			var one ledgerv1.ListRunsResponse
			ctl.json(t, &one, "runs", "list", "--tenant", tenant, "--entity", "creditmemo", "--magento-id", strconv.FormatInt(id, 10))
			if len(one.GetRuns()) != 1 || one.GetRuns()[0].GetMagentoEntityId() != id {
				t.Fatalf("runs list --magento-id %d: %v", id, one.GetRuns())
			}
			runOf[id] = one.GetRuns()[0].GetSyncRunId()
		}
		var failed ledgerv1.ListRunsResponse
		ctl.json(t, &failed, "runs", "list", "--tenant", tenant, "--status", "failed", "--event", "creditmemo.created", "--class", "not_found",
			"--code", "magento_entity_not_found", "--since", "1h", "--until", time.Now().Add(time.Minute).UTC().Format(time.RFC3339))
		if len(failed.GetRuns()) != len(missing) {
			t.Fatalf("failed credit memo runs: %v", failed.GetRuns())
		}
		inv, ok := st.Shop.Invoice(seed.InvoiceIDs[0])
		if !ok {
			t.Fatal("the first seeded invoice is gone")
		}
		var byNumber ledgerv1.ListRunsResponse
		ctl.json(t, &byNumber, "runs", "list", "--tenant", tenant, "--increment-id", inv.IncrementID, "--status", "succeeded")
		if len(byNumber.GetRuns()) == 0 || byNumber.GetRuns()[0].GetMagentoEntityId() != inv.MagentoID {
			t.Fatalf("runs list --increment-id %s: %v", inv.IncrementID, byNumber.GetRuns())
		}
		var skipped ledgerv1.ListRunsResponse
		ctl.json(t, &skipped, "runs", "list", "--tenant", tenant, "--skip-reason", "zero_value_invoice")
		if len(skipped.GetRuns()) != 0 {
			t.Fatalf("no run was skipped, got %v", skipped.GetRuns())
		}

		var everything ledgerv1.ListRunsResponse
		ctl.json(t, &everything, "runs", "list", "--tenant", tenant, "--limit", "1000")
		total := len(everything.GetRuns())
		if total < 6 || everything.GetNextPageToken() != "" {
			t.Fatalf("%d runs, next page %q", total, everything.GetNextPageToken())
		}
		var page1, page2 ledgerv1.ListRunsResponse
		ctl.json(t, &page1, "runs", "list", "--tenant", tenant, "--limit", "1")
		ctl.json(t, &page2, "runs", "list", "--tenant", tenant, "--limit", "1", "--page-token", page1.GetNextPageToken())
		if page1.GetNextPageToken() == "" || len(page2.GetRuns()) != 1 || page2.GetRuns()[0].GetSyncRunId() != everything.GetRuns()[1].GetSyncRunId() {
			t.Fatalf("page 1 %v (next %q), page 2 %v; want the second newest run %s", page1.GetRuns(), page1.GetNextPageToken(), page2.GetRuns(),
				everything.GetRuns()[1].GetSyncRunId())
		}
		var all ledgerv1.ListRunsResponse
		ctl.json(t, &all, "runs", "list", "--tenant", tenant, "--limit", "2", "--all")
		if len(all.GetRuns()) != total || all.GetNextPageToken() != "" {
			t.Fatalf("--all in pages of 2: %d runs (next %q), want %d", len(all.GetRuns()), all.GetNextPageToken(), total)
		}
	})

	step("runs show, tenants show, oauth status", func(t *testing.T) {
		var ok ledgerv1.ListRunsResponse
		ctl.json(t, &ok, "runs", "list", "--tenant", tenant, "--status", "succeeded", "--entity", "invoice", "--event", "invoice.created", "--limit", "1")
		if len(ok.GetRuns()) != 1 {
			t.Fatalf("no succeeded invoice run: %v", ok.GetRuns())
		}
		var run ledgerv1.GetRunResponse
		ctl.json(t, &run, "runs", "show", ok.GetRuns()[0].GetSyncRunId(), "--payloads")
		if run.GetRun().GetStatus() != "succeeded" || run.GetRun().GetSageId() == "" || len(run.GetAttempts()) == 0 || run.GetCanonicalJson() == "" ||
			run.GetSageRequestJson() == "" || len(run.GetRun().GetAppliedQuirks()) == 0 {
			t.Fatalf("runs show: %v", protojson.Format(&run))
		}
		var failed ledgerv1.GetRunResponse
		ctl.json(t, &failed, "runs", "show", runOf[missing[0]])
		if failed.GetRun().GetErrorCode() != "magento_entity_not_found" ||
			!slices.ContainsFunc(failed.GetAttempts(), func(a *ledgerv1.Attempt) bool { return a.GetHttpStatus() == http.StatusNotFound }) {
			t.Fatalf("runs show of a failed run: %v", protojson.Format(&failed))
		}

		var shown ledgerv1.GetTenantResponse
		ctl.json(t, &shown, "tenants", "show", tenant)
		n := shown.GetCounts()
		if n.GetFailed() != int64(len(missing)) || n.GetSucceeded() < 3 || n.GetDeadLetters() != int64(len(missing)) {
			t.Fatalf("tenants show counts: %v", n)
		}
		h := shown.GetTenant().GetShopHealth()
		if !slices.Contains([]string{"ok", "silent", "auth_drift", "not_paired", "never_sent"}, h.GetVerdict()) || h.GetMessage() == "" {
			t.Fatalf("tenants show shop health: %v", h)
		}
		t.Logf("shop health: %s (%s), last webhook %s", h.GetVerdict(), h.GetMessage(), h.GetLastWebhookAt().AsTime())

		// The sync-state transport round trip (back to http: the shop
		// simulator mirrors what statecallback sends it).
		for _, tr := range []string{"nats", "http"} {
			var set ledgerv1.SetSyncStateTransportResponse
			ctl.json(t, &set, "tenants", "sync-state", tenant, "--transport", tr)
			if set.GetTenant().GetSyncStateTransport() != tr {
				t.Fatalf("tenants sync-state --transport %s: %v", tr, protojson.Format(&set))
			}
		}

		var oauth ledgerv1.GetOAuthStatusResponse
		ctl.json(t, &oauth, "oauth", "status", tenant)
		if oauth.GetStatus() != "active" || oauth.GetBusinessId() != st.Sage.LeadBusinessID() || oauth.GetAccessExpiresAt() == nil ||
			oauth.GetRefreshedAt() == nil || oauth.GetAccessToken() != "" {
			t.Fatalf("oauth status: %v", protojson.Format(&oauth))
		}
		// The stack runs with LEDGER_ENV=dev: the token is revealed on request.
		var revealed ledgerv1.GetOAuthStatusResponse
		ctl.json(t, &revealed, "oauth", "status", tenant, "--reveal-token")
		if revealed.GetAccessToken() == "" {
			t.Fatal("oauth status --reveal-token in dev returned no token")
		}
	})

	step("dlq replay --dry-run, dlq purge (dry run, --yes, confirmed), dlq replay", func(t *testing.T) {
		run1, run2, run3 := runOf[missing[0]], runOf[missing[1]], runOf[missing[2]]
		for _, d := range dead.GetDeadLetters() {
			if dl := d.GetDeadLetter(); dl.GetTenantId() != tenant || !slices.Contains([]string{run1, run2, run3}, dl.GetSyncRunId()) {
				t.Fatalf("dead letter %v is not one of the three runs", dl)
			}
		}
		dry := jsonLines(t, ctl, func() *ledgerv1.ReplayDeadLettersResponse { return new(ledgerv1.ReplayDeadLettersResponse) },
			"", "dlq", "replay", "--tenant", tenant, "--run", run1, "--dry-run")
		if last := dry[len(dry)-1]; !last.GetDone() || last.GetMatched() != 1 || last.GetReplayed() != 0 {
			t.Fatalf("dlq replay --dry-run: %v", last)
		}

		var count ledgerv1.PurgeDeadLettersResponse
		ctl.json(t, &count, "dlq", "purge", "--tenant", tenant, "--run", run2, "--dry-run")
		if count.GetMatched() != 1 || count.GetPurged() != 0 {
			t.Fatalf("dlq purge --dry-run: %v", &count)
		}
		var purged ledgerv1.PurgeDeadLettersResponse
		ctl.json(t, &purged, "dlq", "purge", "--tenant", tenant, "--run", run2, "--yes")
		if purged.GetMatched() != 1 || purged.GetPurged() != 1 || purged.GetFailed() != 0 {
			t.Fatalf("dlq purge --yes: %v", &purged)
		}
		// Without --yes the question names the count; "yes" on stdin confirms.
		res := ctl.run(t, "yes\n", "dlq", "purge", "--run", run3)
		if res.code != 0 || !strings.Contains(res.stderr, "Delete 1 dead letters for good (--run "+run3+")?") {
			t.Fatalf("confirmed purge: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
		}
		if err := protojson.Unmarshal([]byte(res.stdout), &purged); err != nil || purged.GetPurged() != 1 {
			t.Fatalf("confirmed purge printed %q: %v", res.stdout, err)
		}
		// Declined: nothing deleted, exit 1.
		if res := ctl.run(t, "no\n", "dlq", "purge", "--run", run1); res.code != 1 || !strings.Contains(res.stderr, "nothing was deleted") {
			t.Fatalf("declined purge: exit %d\n%s", res.code, res.stderr)
		}
		var left ledgerv1.ListDeadLettersResponse
		ctl.json(t, &left, "dlq", "list", "--tenant", tenant)
		if len(left.GetDeadLetters()) != 1 || left.GetDeadLetters()[0].GetDeadLetter().GetSyncRunId() != run1 {
			t.Fatalf("after the purges the DLQ holds %v, want run %s's only", protojson.Format(&left), run1)
		}

		moved := jsonLines(t, ctl, func() *ledgerv1.ReplayDeadLettersResponse { return new(ledgerv1.ReplayDeadLettersResponse) },
			"", "dlq", "replay", "--tenant", tenant, "--run", run1, "--rate", "10")
		if last := moved[len(moved)-1]; !last.GetDone() || last.GetMatched() != 1 || last.GetReplayed() != 1 || last.GetFailed() != 0 {
			t.Fatalf("dlq replay: %v", last)
		}
	})

	step("runs retry by ids and by filter, runs recover", func(t *testing.T) {
		var dry ledgerv1.RetryRunsResponse
		ctl.json(t, &dry, "runs", "retry", runOf[missing[2]], "--dry-run")
		if dry.GetMatched() != 1 || len(dry.GetRuns()) != 0 {
			t.Fatalf("runs retry RUN --dry-run: %v", &dry)
		}
		var byFilter ledgerv1.RetryRunsResponse
		ctl.json(t, &byFilter, "runs", "retry", "--tenant", tenant, "--entity", "creditmemo", "--magento-id", "9002", "--dry-run")
		if byFilter.GetMatched() != 1 || len(byFilter.GetRuns()) != 0 {
			t.Fatalf("runs retry --magento-id 9002 --dry-run: %v", &byFilter)
		}
		ctl.json(t, &byFilter, "runs", "retry", "--tenant", tenant, "--magento-id", "9002", "--status", "failed")
		if byFilter.GetMatched() != 1 || len(byFilter.GetRuns()) != 1 || byFilter.GetRuns()[0].GetError() != "" ||
			byFilter.GetRuns()[0].GetSyncRunId() != runOf[9002] {
			t.Fatalf("runs retry by filter: %v", &byFilter)
		}
		var byID ledgerv1.RetryRunsResponse
		ctl.json(t, &byID, "runs", "retry", runOf[missing[2]])
		if len(byID.GetRuns()) != 1 || byID.GetRuns()[0].GetError() != "" {
			t.Fatalf("runs retry RUN: %v", &byID)
		}

		var recover ledgerv1.RecoverRunsResponse
		ctl.json(t, &recover, "runs", "recover", "--tenant", tenant, "--idle", "1h", "--dry-run")
		if recover.GetFound() != 0 {
			t.Fatalf("runs recover --dry-run found %d idle runs in a fresh stack", recover.GetFound())
		}
		ctl.json(t, &recover, "runs", "recover", "--tenant", tenant, "--idle", "1h", "--limit", "10")
		if recover.GetFound() != 0 || recover.GetRepublished() != 0 || len(recover.GetFailed()) != 0 {
			t.Fatalf("runs recover: %v", &recover)
		}
	})

	step("backfill, xref, policy, refdata", func(t *testing.T) {
		newMsg := func() *ledgerv1.BackfillSyncStateResponse { return new(ledgerv1.BackfillSyncStateResponse) }
		dry := jsonLines(t, ctl, newMsg, "", "backfill", "sync-state", "--tenant", tenant, "--entity", "invoice", "--dry-run")
		if last := dry[len(dry)-1]; !last.GetDone() || last.GetTotal() < 3 || last.GetPushed() != 0 {
			t.Fatalf("backfill --dry-run: %v", last)
		}
		msgs := jsonLines(t, ctl, newMsg, "", "backfill", "sync-state", "--tenant", tenant, "--entity", "invoice", "--since", "1d", "--batch", "2")
		if last := msgs[len(msgs)-1]; !last.GetDone() || last.GetFailed() != 0 || last.GetPushed()+last.GetSkipped() != last.GetTotal() {
			t.Fatalf("backfill: %v", last)
		}

		var xref ledgerv1.SetXrefResponse
		ctl.json(t, &xref, "xref", "set", "--tenant", tenant, "--kind", "contact", "--key", "M-CLI", "--currency", "GBP",
			"--sage-id", "cli-contact-1", "--reference", "M-CLI")
		if xref.GetPreviousSageId() != "" {
			t.Fatalf("xref set: previous %q for a new key", xref.GetPreviousSageId())
		}

		var got ledgerv1.GetPolicyResponse
		ctl.json(t, &got, "policy", "get", "--tenant", tenant)
		file := filepath.Join(t.TempDir(), "policy.json")
		if err := os.WriteFile(file, []byte(got.GetPolicyJson()), 0o600); err != nil {
			t.Fatal(err)
		}
		var set ledgerv1.SetPolicyResponse
		ctl.json(t, &set, "policy", "set", "--tenant", tenant, "--file", file)
		var before, after map[string]any
		if err := errors.Join(json.Unmarshal([]byte(got.GetPolicyJson()), &before), json.Unmarshal([]byte(set.GetPolicyJson()), &after)); err != nil ||
			len(before) == 0 || !reflect.DeepEqual(before, after) {
			t.Fatalf("policy set of policy get's document: %v\nbefore %s\nafter %s", err, got.GetPolicyJson(), set.GetPolicyJson())
		}

		var refs ledgerv1.RefreshReferenceDataResponse
		ctl.json(t, &refs, "refdata", "refresh", "--tenant", tenant)
		if refs.GetCounts()["ledger_accounts"] == 0 || refs.GetCounts()["bank_accounts"] == 0 {
			t.Fatalf("refdata refresh: %v", refs.GetCounts())
		}
	})

	step("reconcile run, findings, totals", func(t *testing.T) {
		var pass ledgerv1.ReconcileResponse
		ctl.json(t, &pass, "reconcile", "run", "--tenant", tenant, "--since", "1d")
		if pass.GetHighWater() == nil || pass.GetExamined() < 3 || len(pass.GetFindings()) != 0 {
			t.Fatalf("reconcile run: %v", protojson.Format(&pass))
		}
		var findings ledgerv1.ListReconcileFindingsResponse
		ctl.json(t, &findings, "reconcile", "findings", "--tenant", tenant, "--resolved", "--limit", "10")
		if len(findings.GetFindings()) != 0 {
			t.Fatalf("reconcile findings: %v", protojson.Format(&findings))
		}
		var totals ledgerv1.GetDailyTotalsResponse
		ctl.json(t, &totals, "reconcile", "totals", "--tenant", tenant, "--from", time.Now().AddDate(0, 0, -2).Format(time.DateOnly))
		if len(totals.GetTotals()) == 0 {
			t.Fatal("reconcile totals: no day")
		}
		for _, d := range totals.GetTotals() {
			if strings.Trim(d.GetDifference(), "-0.") != "" || d.GetInvoices() == 0 {
				t.Fatalf("reconcile totals: %v", d)
			}
		}
	})

	step("completion scripts", func(t *testing.T) {
		for _, shell := range []string{"bash", "zsh", "fish"} {
			res := ctl.run(t, "", "completion", shell)
			if res.code != 0 || len(res.stdout) < 1000 || !strings.Contains(res.stdout, "__complete") || !strings.Contains(res.stdout, "ledgerctl") {
				t.Fatalf("completion %s: exit %d, %d bytes\n%.200s%s", shell, res.code, len(res.stdout), res.stdout, res.stderr)
			}
		}
	})

	step("magento disconnect, sage disconnect", func(t *testing.T) {
		var m ledgerv1.DisconnectMagentoResponse
		ctl.json(t, &m, "magento", "disconnect", "--tenant", tenant)
		if s := m.GetTenant().GetMagentoConnectionStatus(); s != "revoked" {
			t.Fatalf("magento disconnect: Magento is %q", s)
		}
		var s ledgerv1.DisconnectSageResponse
		ctl.json(t, &s, "sage", "disconnect", "--tenant", tenant)
		if got := s.GetTenant().GetSageStatus(); got != "revoked" {
			t.Fatalf("sage disconnect: Sage is %q", got)
		}
	})

	// Every command of the binary's tree has a case above.
	tree := ctl.commandTree(t)
	if len(tree) < 25 {
		t.Fatalf("the command tree lists %d commands: %v", len(tree), tree)
	}
	for _, name := range tree {
		if !ctl.covered[name] {
			t.Errorf("ledgerctl %s has no case in TestLedgerctlEndToEnd: add one", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ctl.covered)) {
		if !slices.Contains(tree, name) {
			t.Errorf("the test ran ledgerctl %s, which the command tree does not list", name)
		}
	}
	t.Logf("%d commands in %s", len(tree), time.Since(started).Round(time.Millisecond))
}

// ledgerctlE2E runs the built ledgerctl against the stack.
type ledgerctlE2E struct {
	bin string
	ctx context.Context
	env []string

	mu      sync.Mutex
	covered map[string]bool // "group command" run at least once
}

type ledgerctlResult struct {
	stdout, stderr string
	code           int
}

// run runs ledgerctl GROUP COMMAND args… --output json with stdin.
func (c *ledgerctlE2E) run(t *testing.T, stdin string, args ...string) ledgerctlResult {
	t.Helper()
	c.mu.Lock()
	c.covered[args[0]+" "+args[1]] = true
	c.mu.Unlock()
	cmd := exec.CommandContext(c.ctx, c.bin, append(slices.Clone(args), "--output", "json")...)
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	res := ledgerctlResult{}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("ledgerctl %s: %v", strings.Join(args, " "), err)
		}
		res.code = ee.ExitCode()
	}
	res.stdout, res.stderr = out.String(), errb.String()
	return res
}

// json runs a command that must succeed and parses its one JSON document into m.
func (c *ledgerctlE2E) json(t *testing.T, m proto.Message, args ...string) {
	t.Helper()
	res := c.run(t, "", args...)
	if res.code != 0 {
		t.Fatalf("ledgerctl %s: exit %d\n%s%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	proto.Reset(m)
	if err := protojson.Unmarshal([]byte(res.stdout), m); err != nil {
		t.Fatalf("ledgerctl %s printed no %T: %v\n%s", strings.Join(args, " "), m, err, res.stdout)
	}
}

// jsonLines runs a streaming command that must succeed and parses each line.
func jsonLines[M proto.Message](t *testing.T, c *ledgerctlE2E, newMsg func() M, stdin string, args ...string) []M {
	t.Helper()
	res := c.run(t, stdin, args...)
	if res.code != 0 {
		t.Fatalf("ledgerctl %s: exit %d\n%s%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	var out []M
	sc := bufio.NewScanner(strings.NewReader(res.stdout))
	for sc.Scan() {
		m := newMsg()
		if err := protojson.Unmarshal(sc.Bytes(), m); err != nil {
			t.Fatalf("ledgerctl %s: line %q: %v", strings.Join(args, " "), sc.Text(), err)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		t.Fatalf("ledgerctl %s printed nothing", strings.Join(args, " "))
	}
	return out
}

// commandTree lists "group command" for every command of the binary's tree,
// as its completion (the hidden __complete command) answers it.
func (c *ledgerctlE2E) commandTree(t *testing.T) []string {
	t.Helper()
	complete := func(args ...string) []string {
		cmd := exec.CommandContext(c.ctx, c.bin, append([]string{"__complete"}, args...)...)
		cmd.Env = c.env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("ledgerctl __complete %v: %v", args, err)
		}
		var names []string
		for line := range strings.Lines(string(out)) {
			name, _, _ := strings.Cut(strings.TrimSpace(line), "\t")
			if name == "" || strings.HasPrefix(name, ":") || name == "help" { // the directive line; cobra's help command
				continue
			}
			names = append(names, name)
		}
		return names
	}
	var out []string
	for _, g := range complete("") {
		subs := complete(g, "")
		if len(subs) == 0 {
			t.Fatalf("ledgerctl %s lists no commands", g)
		}
		for _, s := range subs {
			out = append(out, g+" "+s)
		}
	}
	return out
}
