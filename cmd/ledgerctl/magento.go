package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

var magentoCommands = []command{
	{
		name:    "connect",
		args:    "--tenant T --shop URL --code CODE",
		summary: "pair a shop with its pairing code",
		help: "Pairs a shop. In the Magento admin open Stores → Configuration → Byte8 → Sage Accounting, generate a\n" +
			"pairing code (valid 30 minutes, single use) and pass it with --code exactly as shown.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			tenant := fs.String("tenant", "", "tenant id (required)")
			shop := fs.String("shop", "", "storefront base URL, e.g. https://shop.example.com (required)")
			code := fs.String("code", "", "the 32-character pairing code from the Magento admin (required)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("magento connect: unexpected argument %q: pass values with --tenant, --shop and --code", args[0])
				}
				var missing []string
				for _, f := range []struct{ name, v string }{{"--tenant", *tenant}, {"--shop", *shop}, {"--code", *code}} {
					if strings.TrimSpace(f.v) == "" {
						missing = append(missing, f.name)
					}
				}
				if len(missing) > 0 {
					verb := "are"
					if len(missing) == 1 {
						verb = "is"
					}
					return usagef("magento connect: %s %s required, e.g. ledgerctl magento connect --tenant acme --shop https://shop.example.com --code <pairing code>",
						strings.Join(missing, ", "), verb)
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.ConnectMagento,
					&ledgerv1.ConnectMagentoRequest{TenantId: *tenant, ShopUrl: *shop, PairingCode: *code})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				t := resp.GetTenant()
				fmt.Fprintf(c.stdout, "Paired tenant %s with %s: the shop answered the signed ping; Magento is %s.\n",
					t.GetTenantId(), t.GetMagentoBaseUrl(), t.GetMagentoConnectionStatus())
				if t.GetSageStatus() != "active" {
					fmt.Fprintf(c.stdout, "Next: ledgerctl sage connect --tenant %s\n", t.GetTenantId())
				}
				return nil
			}
		},
	},
	{
		name:    "disconnect",
		args:    "--tenant T",
		summary: "revoke the shop's binding",
		help:    "Revokes the shop's binding: Ledger forgets its api key and refuses its webhooks until it is paired again.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			tenant := fs.String("tenant", "", "tenant id (required)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) > 0 {
					return usagef("magento disconnect: unexpected argument %q: pass the tenant with --tenant", args[0])
				}
				if strings.TrimSpace(*tenant) == "" {
					return usagef("magento disconnect: --tenant is required, e.g. ledgerctl magento disconnect --tenant acme")
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.DisconnectMagento, &ledgerv1.DisconnectMagentoRequest{TenantId: *tenant})
				if err != nil {
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				t := resp.GetTenant()
				fmt.Fprintf(c.stdout, "Disconnected tenant %s: Magento is %s.\n", t.GetTenantId(), t.GetMagentoConnectionStatus())
				fmt.Fprintln(c.stdout, "The entity cross-references (entity_xref) are kept, so pairing again later never duplicates Sage documents.")
				fmt.Fprintln(c.stdout, "Also press Disconnect in the Magento admin so the shop stops sending events.")
				return nil
			}
		},
	},
}
