package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/protobuf/types/known/timestamppb"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

var oauthCommands = []command{
	{
		name:    "status",
		args:    "TENANT [--reveal-token]",
		summary: "the tenant's Sage OAuth connection: binding, scopes, expiry, last refresh",
		help: "Shows the tenant's Sage OAuth connection: its state (not_connected, active, token_revoked, revoked), the Sage\n" +
			"business and region, the granted scopes, when the access token expires and when the tokens were last\n" +
			"obtained or refreshed. --reveal-token also prints the access token itself, for calling Sage by hand while\n" +
			"debugging; the service answers it only when it runs with LEDGER_ENV=dev and refuses it otherwise, saying why.",
		setup: func(fs *pflag.FlagSet) func(*cli, context.Context, []string) error {
			reveal := fs.Bool("reveal-token", false, "also print the access token (the service allows it only with LEDGER_ENV=dev)")
			return func(c *cli, ctx context.Context, args []string) error {
				if len(args) != 1 {
					return usagef("oauth status: give exactly one tenant id, e.g. ledgerctl oauth status acme (ledgerctl tenants list shows them)")
				}
				resp, err := call(ctx, c, ledgerv1.AdminServiceClient.GetOAuthStatus,
					&ledgerv1.GetOAuthStatusRequest{TenantId: args[0], RevealToken: *reveal})
				if err != nil {
					if *reveal {
						return fmt.Errorf("%w (run it without --reveal-token for the rest)", err)
					}
					return err
				}
				if c.g.json {
					return printJSON(c.stdout, resp)
				}
				now := time.Now()
				kv := []string{
					"Tenant", args[0],
					"Sage", resp.GetStatus(),
					"Business", resp.GetBusinessId(),
					"Region", resp.GetRegion(),
					"Scopes", strings.Join(resp.GetScopes(), " "),
					"Access expires", when(resp.GetAccessExpiresAt(), now),
					"Last refresh", when(resp.GetRefreshedAt(), now),
				}
				if *reveal {
					kv = append(kv, "Access token", resp.GetAccessToken())
				}
				if err := fields(c.stdout, kv...); err != nil {
					return err
				}
				if *reveal && resp.GetAccessToken() != "" {
					fmt.Fprintln(c.stderr, "The access token is a live credential: use it only against this development stack, never paste it anywhere.")
				}
				switch resp.GetStatus() {
				case "not_connected", "revoked":
					fmt.Fprintf(c.stdout, "\nConnect Sage with: ledgerctl sage connect --tenant %s\n", args[0])
				case "token_revoked":
					fmt.Fprintf(c.stdout, "\nSage refused the refresh token: authorise again with ledgerctl sage connect --tenant %s\n", args[0])
				}
				return nil
			}
		},
	},
}

// when is a timestamp with how far it is from now: "2026-05-01T09:00:00Z (in
// 42m)" or "(3m ago)".
func when(t *timestamppb.Timestamp, now time.Time) string {
	s := ts(t)
	if s == "" {
		return ""
	}
	d := t.AsTime().Sub(now).Round(time.Second)
	if d >= 0 {
		return fmt.Sprintf("%s (in %s)", s, d)
	}
	return fmt.Sprintf("%s (%s ago)", s, -d)
}
