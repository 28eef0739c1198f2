package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

var runStatuses = map[string]bool{"pending": true, "running": true, "succeeded": true, "skipped": true, "failed": true}

var runCommands = map[string]command{
	"list": {
		usage: "runs list [--tenant T] [--status S] [--limit N]",
		help:  "Lists sync runs (one per event delivery), newest first.",
		setup: func(fs *flag.FlagSet) func(*cli, context.Context, []string) error {
			tenant := fs.String("tenant", "", "only this tenant's runs")
			st := fs.String("status", "", "only runs in this status: pending, running, succeeded, skipped or failed")
			limit := fs.Int("limit", 50, "at most this many runs (1-1000)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("runs list: unexpected argument %q: filter with --tenant, --status and --limit", args[0])
				}
				if *st != "" && !runStatuses[*st] {
					return usagef("runs list: --status %q: use pending, running, succeeded, skipped or failed", *st)
				}
				if *limit < 1 || *limit > 1000 {
					return usagef("runs list: --limit %d: use 1-1000 (default 50)", *limit)
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.ListRuns,
					&ledgerv1.ListRunsRequest{TenantId: *tenant, Status: *st, Limit: int32(*limit)})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				if len(resp.GetRuns()) == 0 {
					fmt.Fprintln(c.stdout, "No runs match.")
					return nil
				}
				t := newTable(c.stdout, "CREATED", "TENANT", "EVENT", "ENTITY", "STATUS", "ATTEMPTS", "SAGE ID / SKIP", "ERROR", "LAST ERROR", "RUN")
				for _, r := range resp.GetRuns() {
					result := r.GetSageId()
					if result == "" {
						result = r.GetSkipReason()
					}
					errCol := r.GetErrorClass()
					if r.GetErrorCode() != "" {
						errCol += "/" + r.GetErrorCode()
					}
					t.row(ts(r.GetCreatedAt()), r.GetTenantId(), r.GetEvent(),
						r.GetEntityType()+" "+strconv.FormatInt(r.GetMagentoEntityId(), 10), r.GetStatus(),
						strconv.Itoa(int(r.GetAttempts())), result, errCol, truncate(r.GetLastError(), 60), r.GetSyncRunId())
				}
				return t.flush()
			}
		},
	},
}
