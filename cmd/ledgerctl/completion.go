package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// completionCommands print the shell completion scripts. The scripts call
// the hidden "ledgerctl __complete" command cobra adds, which answers from the
// same command tree: commands, flags, the fixed choices of some flags, and
// tenant ids (asked from the AdminService with the usual address and token).
var completionCommands = []command{
	{
		name:    "bash",
		summary: "print the bash completion script",
		help: "Prints the bash completion script (it needs the bash-completion package).\n" +
			"This shell only:   source <(ledgerctl completion bash)\n" +
			"Every new shell:   ledgerctl completion bash > /etc/bash_completion.d/ledgerctl\n" +
			"The script is printed as it is whatever --output says.",
		setup: completionSetup("bash", func(root *cobra.Command, c *cli) error { return root.GenBashCompletionV2(c.stdout, true) }),
	},
	{
		name:    "zsh",
		summary: "print the zsh completion script",
		help: "Prints the zsh completion script.\n" +
			"This shell only:   source <(ledgerctl completion zsh)\n" +
			"Every new shell:   ledgerctl completion zsh > \"${fpath[1]}/_ledgerctl\"  (with compinit in ~/.zshrc)\n" +
			"The script is printed as it is whatever --output says.",
		setup: completionSetup("zsh", func(root *cobra.Command, c *cli) error { return root.GenZshCompletion(c.stdout) }),
	},
	{
		name:    "fish",
		summary: "print the fish completion script",
		help: "Prints the fish completion script.\n" +
			"This shell only:   ledgerctl completion fish | source\n" +
			"Every new shell:   ledgerctl completion fish > ~/.config/fish/completions/ledgerctl.fish\n" +
			"The script is printed as it is whatever --output says.",
		setup: completionSetup("fish", func(root *cobra.Command, c *cli) error { return root.GenFishCompletion(c.stdout, true) }),
	},
}

func completionSetup(shell string, gen func(*cobra.Command, *cli) error) func(*pflag.FlagSet) func(*cli, context.Context, []string) error {
	return func(*pflag.FlagSet) func(*cli, context.Context, []string) error {
		return func(c *cli, _ context.Context, args []string) error {
			if len(args) > 0 {
				return usagef("completion %s: unexpected argument %q (it takes none)", shell, args[0])
			}
			return gen(c.root, c)
		}
	}
}

// flagChoices are the values shells offer for flags of that name.
var flagChoices = map[string][]string{
	"status": {"pending", "running", "succeeded", "skipped", "failed"},
	"stage":  {"mapper", "sage-writer", "statecallback"},
	"kind":   {"contact", "invoice", "credit_note", "payment", "product", "service"},
}

// registerChoices makes the shell offer choices for the command's flag name.
func registerChoices(cmd *cobra.Command, name string, choices ...string) {
	_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(choices, cobra.ShellCompDirectiveNoFileComp))
}

// completeChoices registers the completions of a command of the table: its
// flags with fixed choices, --tenant and a TENANT argument from the service.
func completeChoices(c *cli, cmd *cobra.Command) {
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if choices, ok := flagChoices[f.Name]; ok {
			registerChoices(cmd, f.Name, choices...)
		}
	})
	if cmd.Flags().Lookup("tenant") != nil {
		_ = cmd.RegisterFlagCompletionFunc("tenant", func(cc *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return c.tenantCompletions(cc, toComplete), cobra.ShellCompDirectiveNoFileComp
		})
	}
	if strings.HasPrefix(cmd.Use, cmd.Name()+" TENANT") {
		cmd.ValidArgsFunction = func(cc *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return c.tenantCompletions(cc, toComplete), cobra.ShellCompDirectiveNoFileComp
		}
	}
}

// tenantCompletions asks the service for the tenant ids starting with
// prefix; it offers nothing when the service cannot be asked.
func (c *cli) tenantCompletions(cmd *cobra.Command, prefix string) []cobra.Completion {
	if err := c.g.applyEnvDefaults(cmd.Flags()); err != nil {
		return nil
	}
	c.g.timeout = min(c.g.timeout, 3*time.Second) // a shell waits on it
	resp, err := call(cmd.Context(), c, ledgerv1.AdminServiceClient.ListTenants, &ledgerv1.ListTenantsRequest{})
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, t := range resp.GetTenants() {
		if strings.HasPrefix(t.GetTenantId(), prefix) {
			out = append(out, cobra.CompletionWithDesc(t.GetTenantId(), t.GetName()))
		}
	}
	slices.Sort(out)
	return out
}
