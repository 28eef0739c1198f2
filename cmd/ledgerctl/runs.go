package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

var runStatuses = map[string]bool{"pending": true, "running": true, "succeeded": true, "skipped": true, "failed": true}

var runCommands = []command{
	{
		name:    "list",
		args:    "[--tenant T] [--status S] [--limit N]",
		summary: "list sync runs, newest first",
		help:    "Lists sync runs (one per event delivery), newest first.",
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
	{
		name:    "show",
		args:    "RUN",
		summary: "one run with its attempt history",
		help:    "Shows one sync run with its outcome and every HTTP attempt it made (Magento fetches, Sage calls, callbacks).",
		setup: func(fs *flag.FlagSet) func(*cli, context.Context, []string) error {
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) != 1 {
					return usagef("runs show: give exactly one run id, e.g. ledgerctl runs show 5d0c… (ledgerctl runs list shows them)")
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.GetRun, &ledgerv1.GetRunRequest{SyncRunId: args[0]})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				r := resp.GetRun()
				errCol := r.GetErrorClass()
				if r.GetErrorCode() != "" {
					errCol += "/" + r.GetErrorCode()
				}
				if err := fields(c.stdout,
					"Run", r.GetSyncRunId(),
					"Tenant", r.GetTenantId(),
					"Event", r.GetEvent(),
					"Entity", r.GetEntityType()+" "+strconv.FormatInt(r.GetMagentoEntityId(), 10),
					"Status", r.GetStatus(),
					"Sage id", r.GetSageId(),
					"Change", r.GetChange(),
					"Skip reason", r.GetSkipReason(),
					"Error", errCol,
					"Last error", r.GetLastError(),
					"Attempts", strconv.Itoa(int(r.GetAttempts())),
					"Created", ts(r.GetCreatedAt()),
					"Finished", ts(r.GetFinishedAt()),
					"Trace", r.GetTraceId(),
				); err != nil {
					return err
				}
				if len(resp.GetAttempts()) == 0 {
					fmt.Fprintln(c.stdout, "\nNo HTTP attempts recorded.")
					return nil
				}
				fmt.Fprintln(c.stdout)
				t := newTable(c.stdout, "#", "STAGE", "CALL", "HTTP", "MS", "OUTCOME", "SOURCE", "REQUEST ID")
				for i, a := range resp.GetAttempts() {
					httpStatus := ""
					if a.GetHttpStatus() != 0 {
						httpStatus = strconv.Itoa(int(a.GetHttpStatus()))
					}
					t.row(strconv.Itoa(i+1), a.GetStage(), a.GetMethod()+" "+a.GetPath(), httpStatus,
						strconv.FormatInt(a.GetDurationMs(), 10), a.GetOutcome(), a.GetErrorSource(), a.GetRequestId())
				}
				if err := t.flush(); err != nil {
					return err
				}
				for i, a := range resp.GetAttempts() {
					if a.GetEnvelope() != "" {
						fmt.Fprintf(c.stdout, "\nAttempt %d response:\n%s\n", i+1, a.GetEnvelope())
					}
				}
				return nil
			}
		},
	},
	{
		name:    "retry",
		args:    "RUN...",
		summary: "re-run runs; re-fires the sync-state callback",
		help: "Re-runs finished runs, like the dashboard's Retry button: each run goes back to pending and its event is\n" +
			"processed again. The sync is idempotent (nothing is duplicated in Sage) and the new result fires the\n" +
			"sync-state callback again, so the Magento grid shows it. Fix the cause first (policy, mapping, Sage).\n" +
			"A running run is refused.",
		setup: func(fs *flag.FlagSet) func(*cli, context.Context, []string) error {
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) == 0 {
					return usagef("runs retry: give one or more run ids, e.g. ledgerctl runs retry 5d0c… 9a1b… (ledgerctl runs list --status failed shows them)")
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.RetryRuns, &ledgerv1.RetryRunsRequest{SyncRunIds: args})
				if err != nil {
					return err
				}
				if c.g.json {
					if err := printJSON(c.stdout, resp); err != nil {
						return err
					}
				}
				failed := 0
				for _, r := range resp.GetRuns() {
					if r.GetError() != "" {
						failed++
						if !c.g.json {
							fmt.Fprintf(c.stdout, "%s: not retried: %s\n", r.GetSyncRunId(), r.GetError())
						}
						continue
					}
					if !c.g.json {
						fmt.Fprintf(c.stdout, "%s: retrying\n", r.GetSyncRunId())
					}
				}
				if failed > 0 {
					return fmt.Errorf("%d of %d runs were not retried (reasons above)", failed, len(resp.GetRuns()))
				}
				if !c.g.json {
					fmt.Fprintln(c.stdout, "Follow them with: ledgerctl runs show <run>")
				}
				return nil
			}
		},
	},
	{
		name:    "recover",
		args:    "[--tenant T] [--idle 10m] [--limit N] [--dry-run]",
		summary: "republish unfinished runs that stopped moving (after NATS lost its store)",
		help: "Finds runs that are pending or running and have not changed for --idle (default 10m, at least 1m),\n" +
			"oldest first, and publishes their events again: after NATS lost its store (or was restored from an\n" +
			"older backup) they are the work that was in flight. Each is redone idempotently: entity_xref and the\n" +
			"writer's Sage lookups keep Sage free of duplicates. --dry-run only counts them. Restart nothing first:\n" +
			"the services make their streams and consumers again when NATS comes back.",
		setup: func(fs *flag.FlagSet) func(*cli, context.Context, []string) error {
			tenant := fs.String("tenant", "", "only this tenant's runs")
			idle := fs.Duration("idle", 10*time.Minute, "only runs unchanged for at least this long")
			limit := fs.Int("limit", 0, "at most this many runs (0: 10000)")
			dry := fs.Bool("dry-run", false, "count, republish nothing")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("runs recover: unexpected argument %q", args[0])
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.RecoverRuns, &ledgerv1.RecoverRunsRequest{
					TenantId: *tenant, IdleFor: durationpb.New(*idle), Limit: int32(*limit), DryRun: *dry})
				if err != nil {
					return err
				}
				if c.g.json {
					if err := printJSON(c.stdout, resp); err != nil {
						return err
					}
				} else {
					for _, r := range resp.GetFailed() {
						fmt.Fprintf(c.stdout, "%s: not republished: %s\n", r.GetSyncRunId(), r.GetError())
					}
					if *dry {
						fmt.Fprintf(c.stdout, "%d unfinished runs idle for %s would be republished (run again without --dry-run).\n", resp.GetFound(), *idle)
					} else {
						fmt.Fprintf(c.stdout, "%d unfinished runs idle for %s: %d republished.\n", resp.GetFound(), *idle, resp.GetRepublished())
					}
				}
				if n := len(resp.GetFailed()); n > 0 {
					return fmt.Errorf("%d of %d runs were not republished (reasons above)", n, resp.GetFound())
				}
				return nil
			}
		},
	},
}
