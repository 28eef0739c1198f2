package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/protobuf/types/known/timestamppb"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// parseWhen reads a time flag: RFC 3339 (2026-05-01T09:00:00Z), a date
// (2026-05-01, UTC midnight) or a duration back from now (36h, 7d).
func parseWhen(flagName, v string, now time.Time) (*timestamppb.Timestamp, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return timestamppb.New(t), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return timestamppb.New(t), nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return timestamppb.New(now.Add(-time.Duration(n) * 24 * time.Hour)), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return timestamppb.New(now.Add(-d)), nil
	}
	return nil, usagef("--%s %q: use a time such as 2026-05-01T09:00:00Z, a date such as 2026-05-01, or an age such as 36h or 7d", flagName, v)
}

// checkRate validates --rate.
func checkRate(cmd string, rate int) error {
	if rate < 0 || rate > 100000 {
		return usagef("%s: --rate %d: use 0 (as fast as possible) to 100000 per second", cmd, rate)
	}
	return nil
}

func requireTenant(cmd, tenant string) error {
	if strings.TrimSpace(tenant) == "" {
		return usagef("%s: --tenant is required, e.g. ledgerctl %s --tenant acme", cmd, cmd)
	}
	return nil
}

var backfillCommands = []command{
	{
		name:    "sync-state",
		args:    "--tenant T [--entity invoice,creditmemo] [--since TIME] [--rate N] [--dry-run] [--batch N]",
		summary: "push succeeded runs' state to Magento (resumable)",
		help: "Pushes the state of the tenant's succeeded runs to Magento's sync-state mirror (byte8_entity_sync_state),\n" +
			"for rows that synced before the mirror existed or were lost on the Magento side. Runs are walked oldest\n" +
			"first in batches and sent through statecallback; the backfill keeps pace with what the shop confirms.\n" +
			"Interrupt it at any time (Ctrl-C): the same command resumes after the last published batch. Running it\n" +
			"twice is harmless: an entity's newest result always wins, and a repeat within 2 minutes sends nothing.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			tenant := fs.String("tenant", "", "tenant id (required)")
			entity := fs.String("entity", "invoice,creditmemo", "entity types: invoice, creditmemo, customer, product (comma-separated)")
			since := fs.String("since", "", "only runs finished at or after this time (2026-05-01, an RFC 3339 time, or an age such as 30d)")
			rate := fs.Int("rate", 0, "at most this many rows per second (0: as fast as the shop takes them)")
			dry := fs.Bool("dry-run", false, "count what would be pushed, push nothing")
			batch := fs.Int("batch", 1000, "rows per batch (1-1000)")
			return func(c *cli, ctx context.Context, args []string) error {
				const name = "backfill sync-state"
				if len(args) > 0 {
					return usagef("%s: unexpected argument %q: pass values with --tenant, --entity, --since", name, args[0])
				}
				if err := requireTenant(name, *tenant); err != nil {
					return err
				}
				if err := checkRate(name, *rate); err != nil {
					return err
				}
				if *batch < 1 || *batch > 1000 {
					return usagef("%s: --batch %d: use 1-1000 (default 1000)", name, *batch)
				}
				sinceTS, err := parseWhen("since", *since, time.Now())
				if err != nil {
					return err
				}
				req := &ledgerv1.BackfillSyncStateRequest{TenantId: *tenant, EntityTypes: splitList(*entity), Since: sinceTS,
					Rate: int32(*rate), DryRun: *dry, BatchSize: int32(*batch)}
				bar := newProgress(c.stderr)
				var first, last *ledgerv1.BackfillSyncStateResponse
				err = stream(ctx, c, ledgerv1.AdminServiceClient.BackfillSyncState, req, func(m *ledgerv1.BackfillSyncStateResponse) error {
					if c.g.json {
						return printJSONLine(c.stdout, m)
					}
					if first == nil {
						first = m
						if m.GetMessage() != "" && !m.GetDone() {
							fmt.Fprintln(c.stderr, m.GetMessage())
						}
					}
					last = m
					if !*dry {
						done := m.GetPushed() + m.GetSkipped()
						detail := fmt.Sprintf("pushed %s", group(m.GetPushed()))
						if m.GetSkipped() > 0 {
							detail += fmt.Sprintf(", %s already sent", group(m.GetSkipped()))
						}
						bar.update(done, m.GetTotal(), done-first.GetPushed()-first.GetSkipped(), detail, m.GetDone())
					}
					return nil
				})
				if err != nil {
					bar.end()
					if errors.Is(err, errInterrupted) {
						return errors.New("backfill interrupted: every published batch is recorded; run the same command again to resume")
					}
					return err
				}
				if !c.g.json && last != nil {
					fmt.Fprintln(c.stdout, last.GetMessage())
				}
				return nil
			}
		},
	},
}

var xrefCommands = []command{
	{
		name:    "set",
		args:    "--tenant T --kind K --key KEY [--currency C] --sage-id ID [--reference R]",
		summary: "link a Magento identity to an existing Sage document",
		help: "Links a Magento identity to an existing Sage document, so the next sync uses it instead of creating one.\n" +
			"Typical use: a synced Sage contact was deleted (Sage keeps its reference reserved) and re-created by hand;\n" +
			"link the customer's reference to the new contact: --kind contact --key M42 --currency GBP --sage-id <id>.\n" +
			"Kinds: contact, invoice, credit_note, payment, product, service.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			tenant := fs.String("tenant", "", "tenant id (required)")
			kind := fs.String("kind", "", "contact, invoice, credit_note, payment, product or service (required)")
			key := fs.String("key", "", `the Magento key: a contact reference such as M42, or an invoice/credit memo id (required)`)
			currency := fs.String("currency", "", "ISO currency of the document (contacts are per currency)")
			sageID := fs.String("sage-id", "", "the Sage document's id (required)")
			ref := fs.String("reference", "", "the Sage document's reference (used to find it after an ambiguous write)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("xref set: unexpected argument %q: pass values with --tenant, --kind, --key, --sage-id", args[0])
				}
				var missing []string
				for _, f := range []struct{ name, v string }{{"--tenant", *tenant}, {"--kind", *kind}, {"--key", *key}, {"--sage-id", *sageID}} {
					if strings.TrimSpace(f.v) == "" {
						missing = append(missing, f.name)
					}
				}
				if len(missing) > 0 {
					return usagef("xref set: %s required, e.g. ledgerctl xref set --tenant acme --kind contact --key M42 --currency GBP --sage-id 5c1f…",
						strings.Join(missing, ", "))
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.SetXref, &ledgerv1.SetXrefRequest{TenantId: *tenant, Kind: *kind,
					MagentoKey: *key, Currency: *currency, SageId: *sageID, Reference: *ref})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				what := *kind + " " + *key
				if *currency != "" {
					what += " (" + strings.ToUpper(*currency) + ")"
				}
				switch prev := resp.GetPreviousSageId(); prev {
				case "":
					fmt.Fprintf(c.stdout, "Linked %s to Sage %s.\n", what, *sageID)
				case *sageID:
					fmt.Fprintf(c.stdout, "%s was already linked to Sage %s.\n", what, *sageID)
				default:
					fmt.Fprintf(c.stdout, "Relinked %s to Sage %s (was %s).\n", what, *sageID, prev)
				}
				return nil
			}
		},
	},
}

var policyCommands = []command{
	{
		name:    "get",
		args:    "--tenant T",
		summary: "print the tenant's sync policy (JSON)",
		help:    "Prints the tenant's stored sync policy as JSON. Keys it leaves out take their defaults.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			tenant := fs.String("tenant", "", "tenant id (required)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("policy get: unexpected argument %q: pass the tenant with --tenant", args[0])
				}
				if err := requireTenant("policy get", *tenant); err != nil {
					return err
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.GetPolicy, &ledgerv1.GetPolicyRequest{TenantId: *tenant})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				fmt.Fprintln(c.stdout, resp.GetPolicyJson())
				return nil
			}
		},
	},
	{
		name:    "set",
		args:    "--tenant T --file F",
		summary: "validate and store a policy (F or - for stdin)",
		help: "Validates a policy document and stores it (it replaces the whole policy). The service checks the keys,\n" +
			"their shapes, the Sage ids against the tenant's reference data and the mapped Magento payment method\n" +
			"codes against the shop's list, and names every bad field.\n" +
			"Edit the output of policy get: ledgerctl policy get --tenant acme > p.json; …; ledgerctl policy set --tenant acme --file p.json",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			tenant := fs.String("tenant", "", "tenant id (required)")
			file := fs.String("file", "", "the policy JSON file, or - for standard input (required)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("policy set: unexpected argument %q: pass the file with --file", args[0])
				}
				if err := requireTenant("policy set", *tenant); err != nil {
					return err
				}
				if *file == "" {
					return usagef("policy set: --file is required (a JSON file, or - for standard input)")
				}
				doc, err := readInput(*file)
				if err != nil {
					return err
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.SetPolicy, &ledgerv1.SetPolicyRequest{TenantId: *tenant, PolicyJson: string(doc)})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				fmt.Fprintf(c.stdout, "Policy of %s stored:\n%s\n", *tenant, resp.GetPolicyJson())
				return nil
			}
		},
	},
}

// readInput reads a file, or standard input for "-".
func readInput(name string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, usagef("--file: %v", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return b, nil
}

var refdataCommands = []command{
	{
		name:    "refresh",
		args:    "--tenant T",
		summary: "re-read the tenant's Sage reference data",
		help: "Re-reads the tenant's Sage reference data (ledger accounts, tax rates, bank accounts) now, e.g. after\n" +
			"adding a bank account in Sage. The policy is not changed.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			tenant := fs.String("tenant", "", "tenant id (required)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("refdata refresh: unexpected argument %q: pass the tenant with --tenant", args[0])
				}
				if err := requireTenant("refdata refresh", *tenant); err != nil {
					return err
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.RefreshReferenceData, &ledgerv1.RefreshReferenceDataRequest{TenantId: *tenant})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				kinds := make([]string, 0, len(resp.GetCounts()))
				for k := range resp.GetCounts() {
					kinds = append(kinds, k)
				}
				sort.Strings(kinds)
				t := newTable(c.stdout, "KIND", "ITEMS")
				for _, k := range kinds {
					t.row(k, strconv.Itoa(int(resp.GetCounts()[k])))
				}
				return t.flush()
			}
		},
	},
}

// dlqFlags are the dead-letter filter flags.
type dlqFlags struct {
	tenant, stage, class, code, entity, since, until, runs *string
}

func registerDLQFlags(fs *pflag.FlagSet) dlqFlags {
	return dlqFlags{
		tenant: fs.String("tenant", "", "only this tenant's dead letters"),
		stage:  fs.String("stage", "", "only this stage's: mapper, sage-writer or statecallback"),
		class:  fs.String("class", "", "only this error class, e.g. validation"),
		code:   fs.String("code", "", "only this error code, e.g. payment_method_not_mapped"),
		entity: fs.String("entity", "", "only this entity type, e.g. invoice"),
		since:  fs.String("since", "", "only failures at or after this time (a date, an RFC 3339 time or an age such as 24h)"),
		until:  fs.String("until", "", "only failures at or before this time"),
		runs:   fs.String("run", "", "only these run ids (comma-separated)"),
	}
}

func (f dlqFlags) filter() (*ledgerv1.DeadLetterFilter, error) {
	now := time.Now()
	since, err := parseWhen("since", *f.since, now)
	if err != nil {
		return nil, err
	}
	until, err := parseWhen("until", *f.until, now)
	if err != nil {
		return nil, err
	}
	return &ledgerv1.DeadLetterFilter{TenantId: *f.tenant, Stage: *f.stage, ErrorClass: *f.class, ErrorCode: *f.code,
		EntityType: *f.entity, Since: since, Until: until, SyncRunIds: splitList(*f.runs)}, nil
}

var dlqCommands = []command{
	{
		name:    "list",
		args:    "[--tenant T] [--stage S] [--class C] [--code C] [--entity E] [--since T] [--until T] [--run IDS] [--limit N]",
		summary: "list dead letters",
		help: "Lists dead letters (messages a stage gave up on), oldest first, with the error that stopped them.\n" +
			"Fix the cause (see ledgerctl runs show RUN), then replay them with dlq replay and the same filters.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			f := registerDLQFlags(fs)
			limit := fs.Int("limit", 100, "at most this many (1-1000)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("dlq list: unexpected argument %q: filter with --tenant, --stage, --code, …", args[0])
				}
				if *limit < 1 || *limit > 1000 {
					return usagef("dlq list: --limit %d: use 1-1000 (default 100)", *limit)
				}
				filter, err := f.filter()
				if err != nil {
					return err
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.ListDeadLetters, &ledgerv1.ListDeadLettersRequest{Filter: filter, Limit: int32(*limit)})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				if len(resp.GetDeadLetters()) == 0 {
					fmt.Fprintln(c.stdout, "No dead letters match.")
					return nil
				}
				t := newTable(c.stdout, "SEQ", "FAILED AT", "STAGE", "TENANT", "ERROR", "HTTP", "TRIES", "MESSAGE", "RUN")
				for _, d := range resp.GetDeadLetters() {
					dl := d.GetDeadLetter()
					errCol := dl.GetErrorClass()
					if dl.GetErrorCode() != "" {
						errCol += "/" + dl.GetErrorCode()
					}
					httpStatus := ""
					if dl.GetHttpStatus() != 0 {
						httpStatus = strconv.Itoa(int(dl.GetHttpStatus()))
					}
					t.row(strconv.FormatUint(d.GetSequence(), 10), ts(dl.GetLastFailureAt()), dl.GetStage(), dl.GetTenantId(), errCol,
						httpStatus, strconv.Itoa(int(dl.GetAttempts())), truncate(dl.GetMessage(), 60), dl.GetSyncRunId())
				}
				if err := t.flush(); err != nil {
					return err
				}
				if n := len(resp.GetDeadLetters()); n == *limit {
					fmt.Fprintf(c.stdout, "(first %d shown: raise --limit or narrow the filter)\n", n)
				}
				return nil
			}
		},
	},
	{
		name:    "replay",
		args:    "[--tenant T] [--stage S] [--class C] [--code C] [--entity E] [--since T] [--until T] [--run IDS] [--dry-run] [--rate N]",
		summary: "republish dead letters to their original subjects",
		help: "Republishes matching dead letters to the subject they came from; each is removed from the DLQ only after\n" +
			"the republish was acknowledged. Later stages are idempotent, so replaying twice changes nothing in Sage.\n" +
			"Fix the cause first. --dry-run shows how many would move.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			f := registerDLQFlags(fs)
			dry := fs.Bool("dry-run", false, "count what would be replayed, replay nothing")
			rate := fs.Int("rate", 0, "at most this many messages per second (0: unlimited)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("dlq replay: unexpected argument %q: filter with --tenant, --stage, --code, …", args[0])
				}
				if err := checkRate("dlq replay", *rate); err != nil {
					return err
				}
				filter, err := f.filter()
				if err != nil {
					return err
				}
				bar := newProgress(c.stderr)
				var last *ledgerv1.ReplayDeadLettersResponse
				err = stream(ctx, c, ledgerv1.AdminServiceClient.ReplayDeadLetters,
					&ledgerv1.ReplayDeadLettersRequest{Filter: filter, DryRun: *dry, Rate: int32(*rate)},
					func(m *ledgerv1.ReplayDeadLettersResponse) error {
						last = m
						if c.g.json {
							return printJSONLine(c.stdout, m)
						}
						if !*dry && m.GetMatched() > 0 {
							done := m.GetReplayed() + m.GetFailed()
							bar.update(done, m.GetMatched(), done, fmt.Sprintf("replayed %s, failed %s", group(m.GetReplayed()), group(m.GetFailed())), m.GetDone())
						}
						return nil
					})
				if err != nil {
					bar.end()
					if errors.Is(err, errInterrupted) {
						return errors.New("replay interrupted: the dead letters not yet replayed are still in the DLQ; run the same command again")
					}
					return err
				}
				if last == nil {
					return nil
				}
				if !c.g.json {
					fmt.Fprintln(c.stdout, last.GetMessage())
				}
				if last.GetFailed() > 0 {
					return fmt.Errorf("%d dead letters were not replayed", last.GetFailed())
				}
				return nil
			}
		},
	},
	{
		name:    "purge",
		args:    "[--tenant T] [--stage S] [--class C] [--code C] [--entity E] [--since T] [--until T] [--run IDS] [--dry-run] [--yes]",
		summary: "delete dead letters that must never be replayed (confirms the count)",
		help: "Deletes the matching dead letters for good, for failures that must never be replayed (a test order, a\n" +
			"document already fixed by hand in Sage). Give at least one filter (the flags of dlq list). The command\n" +
			"first counts what matches and asks you to confirm that count (--yes skips the question); the purge then\n" +
			"deletes nothing if a different number matches by then. A purge that fails midway keeps every dead letter\n" +
			"it did not delete and says how many it deleted. --dry-run only counts.",
		setup: purgeDeadLetters,
	},
}

// dlqFilterFlagNames are the flags registerDLQFlags defines.
var dlqFilterFlagNames = []string{"tenant", "stage", "class", "code", "entity", "since", "until", "run"}

// purgeDeadLetters is dlq purge. A dry run counts the matching dead letters,
// the operator confirms that count (or passes --yes), and the purge carries
// the count as expected_count, so the service deletes nothing when the
// matching set changed in between.
func purgeDeadLetters(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
	f := registerDLQFlags(fs)
	dry := fs.Bool("dry-run", false, "count what would be purged, delete nothing")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	return func(c *cli, ctx context.Context, args []string) error {
		const name = "dlq purge"
		if len(args) > 0 {
			return usagef("%s: unexpected argument %q: filter with --tenant, --stage, --code, …", name, args[0])
		}
		var given []string
		for _, n := range dlqFilterFlagNames {
			if fs.Changed(n) {
				given = append(given, n)
			}
		}
		if len(given) == 0 {
			return usagef("%s: give at least one filter (--tenant, --stage, --class, --code, --entity, --since, --until, --run): "+
				"the whole DLQ is never purged at once, e.g. ledgerctl dlq purge --tenant acme --code customer_email_missing", name)
		}
		filter, err := f.filter()
		if err != nil {
			return err
		}
		count, err := call(ctx, c, ledgerv1.AdminServiceClient.PurgeDeadLetters, &ledgerv1.PurgeDeadLettersRequest{Filter: filter, DryRun: true})
		if err != nil {
			return err
		}
		n := count.GetMatched()
		if *dry || n == 0 {
			if c.g.json {
				return printJSON(c.stdout, count)
			}
			if n == 0 {
				fmt.Fprintln(c.stdout, "No dead letters match: nothing to purge.")
			} else {
				fmt.Fprintf(c.stdout, "dry run: %d dead letters would be purged (run again without --dry-run).\n", n)
			}
			return nil
		}
		if !*yes {
			ok, err := confirm(c, fmt.Sprintf("Delete %d dead letters for good (%s)? They cannot be replayed afterwards. Type yes to purge: ",
				n, describeDLQFilter(fs, given)))
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("purge not confirmed: nothing was deleted")
			}
		}
		resp, err := call(ctx, c, ledgerv1.AdminServiceClient.PurgeDeadLetters, &ledgerv1.PurgeDeadLettersRequest{Filter: filter, ExpectedCount: n})
		if err != nil {
			return fmt.Errorf("%w (the dead letters not purged stay in the DLQ: the same command with --dry-run counts them)", err)
		}
		if c.g.json {
			if err := printJSON(c.stdout, resp); err != nil {
				return err
			}
		} else if msg := resp.GetMessage(); msg != "" {
			fmt.Fprintln(c.stdout, msg)
		} else {
			fmt.Fprintf(c.stdout, "Purged %d of %d dead letters.\n", resp.GetPurged(), resp.GetMatched())
		}
		if resp.GetFailed() > 0 {
			return fmt.Errorf("%d of %d dead letters were not purged (they stay in the DLQ); %d were", resp.GetFailed(), resp.GetMatched(), resp.GetPurged())
		}
		return nil
	}
}

// describeDLQFilter says which filter flags were given, for the confirmation.
func describeDLQFilter(fs *pflag.FlagSet, given []string) string {
	parts := make([]string, 0, len(given))
	for _, n := range given {
		parts = append(parts, "--"+n+" "+fs.Lookup(n).Value.String())
	}
	return strings.Join(parts, " ")
}

// confirm asks a yes/no question on stderr and reads the answer from
// standard input; anything but y or yes (and no input at all) is no.
func confirm(c *cli, question string) (bool, error) {
	fmt.Fprint(c.stderr, question)
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("reading the confirmation: %w", err)
	}
	if line == "" {
		fmt.Fprintln(c.stderr)
		return false, errors.New("purge not confirmed: standard input gave no answer (pass --yes to purge without the question): nothing was deleted")
	}
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes", nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
