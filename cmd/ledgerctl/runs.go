package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/protobuf/types/known/durationpb"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

var runStatuses = map[string]bool{"pending": true, "running": true, "succeeded": true, "skipped": true, "failed": true}

var runCommands = []command{
	{
		name: "list",
		args: "[--tenant T] [--status S] [--entity E] [--event EV] [--class C] [--code C] [--skip-reason R] " +
			"[--magento-id N] [--increment-id N] [--since T] [--until T] [--limit N] [--page-token P] [--all]",
		summary: "list sync runs, newest first, by any filter",
		help: "Lists sync runs (one per event delivery), newest first. Every filter is optional and they combine with AND\n" +
			"(the dashboard's runs page has the same ones). A page holds --limit runs; when more match, the last line\n" +
			"gives the --page-token of the next (older) page, and --all follows every page.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			f := registerRunFilterFlags(fs)
			limit := fs.Int("limit", 50, "runs per page (1-1000; with --all the default is 1000)")
			page := fs.String("page-token", "", "start at this page (the token the previous page printed)")
			all := fs.Bool("all", false, "follow every page to the last")
			return func(c *cli, ctx context.Context, args []string) error {
				const name = "runs list"
				if len(args) > 0 {
					return usagef("%s: unexpected argument %q: filter with --tenant, --status, --code, … (ledgerctl runs list --help)", name, args[0])
				}
				if *all && !fs.Changed("limit") {
					*limit = 1000
				}
				if *limit < 1 || *limit > 1000 {
					return usagef("%s: --limit %d: use 1-1000 (default 50)", name, *limit)
				}
				filter, err := f.filter(name)
				if err != nil {
					return err
				}
				req := &ledgerv1.ListRunsRequest{TenantId: filter.GetTenantId(), Status: filter.GetStatus(), Filter: filter,
					Limit: int32(*limit), PageToken: strings.TrimSpace(*page)}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.ListRuns, req)
				if err != nil {
					return err
				}
				for *all && resp.GetNextPageToken() != "" {
					req.PageToken = resp.GetNextPageToken()
					next, err := call(ctx, c, ledgerv1.AdminServiceClient.ListRuns, req)
					if err != nil {
						return fmt.Errorf("after %d runs: %w", len(resp.GetRuns()), err)
					}
					resp.Runs, resp.NextPageToken = append(resp.Runs, next.GetRuns()...), next.GetNextPageToken()
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
				if err := t.flush(); err != nil {
					return err
				}
				if tok := resp.GetNextPageToken(); tok != "" {
					fmt.Fprintf(c.stdout, "(more runs match: add --page-token %s for the next page, or --all)\n", tok)
				}
				return nil
			}
		},
	},
	{
		name:    "show",
		args:    "RUN [--payloads]",
		summary: "one run with its attempt history",
		help: "Shows one sync run with its outcome, the Sage quirk rules the mapper applied, and every HTTP attempt it\n" +
			"made (Magento fetches, Sage calls, callbacks) with the response of each failed one. --payloads also prints\n" +
			"the Magento entity as the mapper fetched it and the Sage operations as it built them (never a secret).",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			payloads := fs.Bool("payloads", false, "also print the canonical Magento entity and the Sage request of the run")
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
					"Quirks applied", strings.Join(r.GetAppliedQuirks(), ", "),
				); err != nil {
					return err
				}
				if len(resp.GetAttempts()) == 0 {
					fmt.Fprintln(c.stdout, "\nNo HTTP attempts recorded.")
				} else {
					fmt.Fprintln(c.stdout)
					t := newTable(c.stdout, "#", "STAGE", "CALL", "HTTP", "MS", "OUTCOME", "SOURCE", "REQUEST ID", "AT")
					for i, a := range resp.GetAttempts() {
						httpStatus := ""
						if a.GetHttpStatus() != 0 {
							httpStatus = strconv.Itoa(int(a.GetHttpStatus()))
						}
						t.row(strconv.Itoa(i+1), a.GetStage(), a.GetMethod()+" "+a.GetPath(), httpStatus,
							strconv.FormatInt(a.GetDurationMs(), 10), a.GetOutcome(), a.GetErrorSource(), a.GetRequestId(), ts(a.GetCreatedAt()))
					}
					if err := t.flush(); err != nil {
						return err
					}
					for i, a := range resp.GetAttempts() {
						if a.GetEnvelope() != "" {
							fmt.Fprintf(c.stdout, "\nAttempt %d response:\n%s\n", i+1, a.GetEnvelope())
						}
					}
				}
				if *payloads {
					for _, p := range []struct{ title, doc string }{
						{"Magento entity as fetched", resp.GetCanonicalJson()},
						{"Sage request as built", resp.GetSageRequestJson()},
					} {
						fmt.Fprintf(c.stdout, "\n%s:\n%s\n", p.title, indentJSON(p.doc))
					}
				}
				return nil
			}
		},
	},
	{
		name: "retry",
		args: "[RUN...] [--tenant T] [--status S] [--entity E] [--event EV] [--class C] [--code C] [--skip-reason R] " +
			"[--magento-id N] [--increment-id N] [--since T] [--until T] [--limit N] [--dry-run]",
		summary: "re-run runs by id or by filter; re-fires the sync-state callback",
		help: "Re-runs finished runs, like the dashboard's Retry button: each run goes back to pending and its event is\n" +
			"processed again. The sync is idempotent (nothing is duplicated in Sage) and the new result fires the\n" +
			"sync-state callback again, so the Magento grid shows it. Fix the cause first (policy, mapping, Sage).\n" +
			"A running run is refused. Give run ids, or a filter (the flags of runs list; --tenant is required) to\n" +
			"retry the finished runs it matches, newest first, at most --limit. --dry-run prints how many would be retried.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			f := registerRunFilterFlags(fs)
			limit := fs.Int("limit", 1000, "with a filter: retry at most this many runs (1-1000)")
			dry := fs.Bool("dry-run", false, "count the runs that would be retried, retry nothing")
			return func(c *cli, ctx context.Context, args []string) error {
				const name = "runs retry"
				req := &ledgerv1.RetryRunsRequest{SyncRunIds: args, DryRun: *dry}
				switch set := f.set(fs); {
				case len(args) > 0 && len(set) > 0:
					return usagef("%s: give run ids or a filter (%s), not both", name, strings.Join(set, ", "))
				case len(args) > 0 && fs.Changed("limit"):
					return usagef("%s: --limit caps a retry by filter; with run ids every id given is retried", name)
				case len(args) == 0 && len(set) == 0:
					return usagef("%s: give one or more run ids, e.g. ledgerctl runs retry 5d0c… 9a1b… (ledgerctl runs list --status failed shows them),\n"+
						"or a filter, e.g. ledgerctl runs retry --tenant acme --code payment_method_not_mapped --dry-run", name)
				case len(set) > 0:
					if err := requireTenant(name, *f.tenant); err != nil {
						return err
					}
					if *limit < 1 || *limit > 1000 {
						return usagef("%s: --limit %d: use 1-1000 (default 1000)", name, *limit)
					}
					filter, err := f.filter(name)
					if err != nil {
						return err
					}
					req.Filter, req.Limit = filter, int32(*limit)
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.RetryRuns, req)
				if err != nil {
					return err
				}
				if c.g.json {
					if err := printJSON(c.stdout, resp); err != nil {
						return err
					}
				}
				if *dry {
					if !c.g.json {
						fmt.Fprintf(c.stdout, "dry run: %d runs match and would be retried (run again without --dry-run).\n", resp.GetMatched())
					}
					return nil
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
					if len(resp.GetRuns()) == 0 {
						fmt.Fprintln(c.stdout, "No finished runs match: nothing retried.")
						return nil
					}
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
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
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
