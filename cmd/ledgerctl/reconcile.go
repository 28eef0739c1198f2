package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

var reconcileCommands = []command{
	{
		name:    "run",
		args:    "--tenant T [--since DATE]",
		summary: "compare Sage's documents changed since DATE with Ledger's record and Magento now",
		help: "Runs a reconciliation pass now (the admin service also runs one per tenant every ADMIN_RECONCILE_EVERY):\n" +
			"the Sage sales invoices, credit notes and contact payments changed or deleted since DATE (default: where the\n" +
			"last pass stopped) that Ledger created are compared with Ledger's record and Magento. Each finding has a\n" +
			"code and says how to act (docs/reconciliation.md); nothing is changed in Sage or Magento. A long window\n" +
			"may need a longer --timeout. \"ledgerctl reconcile --tenant T --since DATE\" is the same command.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			tenant := fs.String("tenant", "", "tenant id (required)")
			since := fs.String("since", "", "start of the window: a date (2026-05-01), an RFC 3339 time or an age such as 7d (default: the last pass's high-water mark)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("reconcile run: unexpected argument %q: pass the tenant with --tenant and the window with --since", args[0])
				}
				if err := requireTenant("reconcile run", *tenant); err != nil {
					return err
				}
				sinceTS, err := parseWhen("since", *since, time.Now())
				if err != nil {
					return err
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.Reconcile, &ledgerv1.ReconcileRequest{TenantId: *tenant, Since: sinceTS})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				lists := make([]string, 0, len(resp.GetListed()))
				for k, n := range resp.GetListed() {
					lists = append(lists, k+"="+strconv.Itoa(int(n)))
				}
				sort.Strings(lists)
				fmt.Fprintf(c.stdout, "Window %s → %s; listed %s; %d of Ledger's documents compared (%d Sage, %d Magento calls).\n",
					ts(resp.GetSince()), ts(resp.GetHighWater()), strings.Join(lists, " "), resp.GetExamined(), resp.GetSageCalls(), resp.GetMagentoCalls())
				return printFindings(c, resp.GetFindings())
			}
		},
	},
	{
		name:    "findings",
		args:    "--tenant T [--resolved] [--limit N]",
		summary: "list the tenant's reconciliation findings, most recently seen first",
		help: "Lists the findings the reconciliation passes stored for the tenant: open ones, and with --resolved also\n" +
			"those a later pass saw agree again. Each message names the fix (docs/reconciliation.md).",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			tenant := fs.String("tenant", "", "tenant id (required)")
			resolved := fs.Bool("resolved", false, "include resolved findings")
			limit := fs.Int("limit", 100, "at most this many findings (1-1000)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("reconcile findings: unexpected argument %q: pass the tenant with --tenant", args[0])
				}
				if err := requireTenant("reconcile findings", *tenant); err != nil {
					return err
				}
				if *limit < 1 || *limit > 1000 {
					return usagef("reconcile findings: --limit %d: use 1-1000 (default 100)", *limit)
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.ListReconcileFindings,
					&ledgerv1.ListReconcileFindingsRequest{TenantId: *tenant, IncludeResolved: *resolved, Limit: int32(*limit)})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				return printFindings(c, resp.GetFindings())
			}
		},
	},
	{
		name:    "totals",
		args:    "--tenant T [--from DATE] [--to DATE]",
		summary: "invoiced per day and currency: Magento against Sage, and the difference",
		help: "Prints what was invoiced per invoice date and currency for the invoices Ledger created: Magento's grand\n" +
			"totals against what Sage holds for them (void and deleted invoices count 0), as the reconciliation passes\n" +
			"last saw them. A difference points at findings of that day (reconcile findings).",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			tenant := fs.String("tenant", "", "tenant id (required)")
			from := fs.String("from", "", "first invoice date, YYYY-MM-DD (default 30 days ago)")
			to := fs.String("to", "", "last invoice date, YYYY-MM-DD (default today)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("reconcile totals: unexpected argument %q: pass the tenant with --tenant", args[0])
				}
				if err := requireTenant("reconcile totals", *tenant); err != nil {
					return err
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.GetDailyTotals,
					&ledgerv1.GetDailyTotalsRequest{TenantId: *tenant, From: *from, To: *to})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				if len(resp.GetTotals()) == 0 {
					fmt.Fprintln(c.stdout, "Nothing reconciled in that period yet (ledgerctl reconcile run --tenant T --since DATE fills it).")
					return nil
				}
				t := newTable(c.stdout, "DAY", "CURRENCY", "INVOICES", "MAGENTO", "SAGE", "DIFFERENCE")
				for _, d := range resp.GetTotals() {
					t.row(d.GetDay(), d.GetCurrency(), strconv.FormatInt(d.GetInvoices(), 10), d.GetMagentoInvoiced(), d.GetSageInvoiced(), d.GetDifference())
				}
				return t.flush()
			}
		},
	},
}

func printFindings(c *cli, fs []*ledgerv1.ReconcileFinding) error {
	if len(fs) == 0 {
		fmt.Fprintln(c.stdout, "No findings.")
		return nil
	}
	t := newTable(c.stdout, "CODE", "SAGE", "MAGENTO", "CURRENCY", "SAGE AMOUNT", "MAGENTO AMOUNT", "SEEN", "RESOLVED")
	for _, f := range fs {
		t.row(f.GetCode(), strings.TrimSuffix(f.GetSageResource(), "s")+" "+f.GetSageId(), f.GetXrefKind()+" "+f.GetMagentoKey(),
			f.GetCurrency(), f.GetSageAmount(), f.GetMagentoAmount(), ts(f.GetLastSeenAt()), ts(f.GetResolvedAt()))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout)
	for _, f := range fs {
		fmt.Fprintf(c.stdout, "%s %s: %s\n", f.GetCode(), f.GetSageId(), f.GetMessage())
	}
	return nil
}
