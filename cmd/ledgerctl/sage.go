package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

var sageCommands = []command{
	{
		name:    "connect",
		args:    "--tenant T",
		summary: "print the Sage authorization URL to open",
		help:    "Prints the Sage authorization URL. Open it in a browser within 10 minutes, sign in to Sage and choose Allow.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			tenant := fs.String("tenant", "", "tenant id (required)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("sage connect: unexpected argument %q: pass the tenant with --tenant", args[0])
				}
				if strings.TrimSpace(*tenant) == "" {
					return usagef("sage connect: --tenant is required, e.g. ledgerctl sage connect --tenant acme")
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.StartSageConnect, &ledgerv1.StartSageConnectRequest{TenantId: *tenant})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				fmt.Fprintf(c.stdout, "Open this URL in a browser within 10 minutes, sign in to Sage and choose Allow:\n\n  %s\n\n", resp.GetAuthorizeUrl())
				fmt.Fprintf(c.stdout, "Then check the result with: ledgerctl tenants show %s\n", strings.TrimSpace(*tenant))
				return nil
			}
		},
	},
	{
		name:    "disconnect",
		args:    "--tenant T",
		summary: "revoke the Sage authorization and delete the tokens",
		help:    "Revokes the tenant's Sage authorisation at Sage and deletes its tokens; writes pause until Sage is connected again.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			tenant := fs.String("tenant", "", "tenant id (required)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("sage disconnect: unexpected argument %q: pass the tenant with --tenant", args[0])
				}
				if strings.TrimSpace(*tenant) == "" {
					return usagef("sage disconnect: --tenant is required, e.g. ledgerctl sage disconnect --tenant acme")
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.DisconnectSage, &ledgerv1.DisconnectSageRequest{TenantId: *tenant})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				t := resp.GetTenant()
				fmt.Fprintf(c.stdout, "Disconnected tenant %s from Sage: Sage is %s.\n", t.GetTenantId(), t.GetSageStatus())
				fmt.Fprintln(c.stdout, "Writes wait until Sage is connected again (ledgerctl sage connect); entity_xref is kept, so nothing is duplicated.")
				return nil
			}
		},
	},
}
