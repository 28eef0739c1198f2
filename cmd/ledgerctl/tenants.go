package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

var tenantCommands = []command{
	{
		name:    "create",
		args:    "[--id ID] --name NAME",
		summary: "register a tenant (one per shop)",
		help:    "Registers a tenant (one per Magento shop). Without --id the service assigns a UUID.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			id := fs.String("id", "", "explicit tenant id: 1-64 letters, digits, '-' or '_' (default: a UUID)")
			name := fs.String("name", "", "shop or company name (required)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("tenants create: unexpected argument %q: give the name with --name, e.g. --name %q", args[0], strings.Join(args, " "))
				}
				if strings.TrimSpace(*name) == "" {
					return usagef(`tenants create: --name is required, e.g. ledgerctl tenants create --name "Acme Ltd"`)
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.CreateTenant, &ledgerv1.CreateTenantRequest{TenantId: *id, Name: *name})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				t := resp.GetTenant()
				fmt.Fprintf(c.stdout, "Created tenant %s.\n\n", t.GetTenantId())
				if err := fields(c.stdout, tenantFields(t)...); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "\nNext: ledgerctl magento connect --tenant %s --shop https://<shop> --code <pairing code>\n", t.GetTenantId())
				return nil
			}
		},
	},
	{
		name:    "list",
		args:    "",
		summary: "list tenants and their connections",
		help:    "Lists every tenant with its Magento and Sage connection state.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("tenants list: unexpected argument %q (it takes no arguments)", args[0])
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.ListTenants, &ledgerv1.ListTenantsRequest{})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				if len(resp.GetTenants()) == 0 {
					fmt.Fprintln(c.stdout, `No tenants yet. Create one with: ledgerctl tenants create --name "Shop name"`)
					return nil
				}
				t := newTable(c.stdout, "TENANT", "NAME", "MAGENTO", "SHOP URL", "SAGE", "SAGE BUSINESS", "CREATED", "SHOP HEALTH")
				for _, x := range resp.GetTenants() {
					t.row(x.GetTenantId(), x.GetName(), x.GetMagentoConnectionStatus(), x.GetMagentoBaseUrl(),
						x.GetSageStatus(), x.GetSageBusinessId(), ts(x.GetCreatedAt()), x.GetShopHealth().GetVerdict())
				}
				return t.flush()
			}
		},
	},
	{
		name:    "show",
		args:    "TENANT",
		summary: "one tenant with its shop health, run counts and dead letters",
		help: "Shows one tenant's connections, the shop's health as Ledger sees it from the webhooks (verdict, what to do,\n" +
			"the last webhook received, webhooks refused as unauthorized lately), its sync run counts and its dead letters.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) != 1 {
					return usagef("tenants show: give exactly one tenant id, e.g. ledgerctl tenants show acme (ledgerctl tenants list shows them)")
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.GetTenant, &ledgerv1.GetTenantRequest{TenantId: args[0]})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				n := resp.GetCounts()
				h := resp.GetTenant().GetShopHealth()
				refused := ""
				if h != nil {
					refused = strconv.Itoa(int(h.GetUnauthorizedRecent()))
					if last := ts(h.GetLastUnauthorizedAt()); last != "" {
						refused += " (last " + last + ")"
					}
				}
				dead := itoa(n.GetDeadLetters())
				if n.GetDeadLetters() < 0 {
					dead = "unknown (the DLQ stream could not be read)"
				}
				kv := append(tenantFields(resp.GetTenant()),
					"Shop health", h.GetVerdict(),
					"Shop health note", h.GetMessage(),
					"Last webhook", ts(h.GetLastWebhookAt()),
					"Refused 401s lately", refused,
					"Runs pending", itoa(n.GetPending()),
					"Runs succeeded", itoa(n.GetSucceeded()),
					"Runs skipped", itoa(n.GetSkipped()),
					"Runs failed", itoa(n.GetFailed()),
					"Failed in 24 h", itoa(n.GetFailed_24H()),
					"Dead letters", dead)
				if err := fields(c.stdout, kv...); err != nil {
					return err
				}
				if n.GetDeadLetters() > 0 {
					fmt.Fprintf(c.stdout, "\nSee them with: ledgerctl dlq list --tenant %s\n", resp.GetTenant().GetTenantId())
				}
				return nil
			}
		},
	},
	{
		name:    "sync-state",
		args:    "TENANT --transport http|grpc|nats [--grpc-target HOST:PORT]",
		summary: "choose how the tenant's sync states reach its shop",
		help: "Chooses how statecallback delivers the tenant's sync states: http (the module's REST endpoint, the\n" +
			"default), grpc (a SyncStateService at --grpc-target) or nats (the SHOP stream, which the tenant's\n" +
			"outbox relay applies to byte8_entity_sync_state: for a shop that takes no inbound call; docs/relay.md).",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			transport := fs.String("transport", "", "http, grpc or nats (required)")
			target := fs.String("grpc-target", "", "the SyncStateService address, host:port (grpc only)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) != 1 {
					return usagef("tenants sync-state: give exactly one tenant id, e.g. ledgerctl tenants sync-state acme --transport nats")
				}
				if *transport == "" {
					return usagef("tenants sync-state: --transport is required: http, grpc (with --grpc-target) or nats")
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.SetSyncStateTransport,
					&ledgerv1.SetSyncStateTransportRequest{TenantId: args[0], Transport: *transport, GrpcTarget: *target})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				fmt.Fprintf(c.stdout, "Sync states of %s now go by %s.\n\n", resp.GetTenant().GetTenantId(), resp.GetTenant().GetSyncStateTransport())
				return fields(c.stdout, tenantFields(resp.GetTenant())...)
			}
		},
	},
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
