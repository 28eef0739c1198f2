package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const (
	defaultAddr    = "127.0.0.1:9090"
	defaultTimeout = 60 * time.Second
)

// Output formats of --output.
const (
	outputTable = "table"
	outputJSON  = "json"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(report(err, os.Stderr))
}

// report prints err and returns the exit code.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "ledgerctl: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}

// usageError is a command line the CLI cannot run; it exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{msg: fmt.Sprintf(format, args...)} }

// globals are the flags every command accepts.
type globals struct {
	addr    string
	token   string
	tls     bool
	json    bool // --json, or --output json once the flags are settled
	output  string
	timeout time.Duration
}

// register defines the global flags on fs with their built-in defaults; the
// environment is applied after parsing (applyEnvDefaults), so no help text ever shows
// the token from the environment. A word in backquotes is the flag's value in
// usage texts.
func (g *globals) register(fs *pflag.FlagSet) {
	fs.StringVar(&g.addr, "addr", defaultAddr, "`HOST:PORT` of the AdminService (env LEDGER_ADMIN_ADDR)")
	fs.StringVar(&g.token, "token", "", "operator `TOKEN` (env LEDGER_ADMIN_TOKEN)")
	fs.BoolVar(&g.tls, "tls", false, "use TLS to reach the service (env LEDGER_ADMIN_TLS=true)")
	fs.StringVarP(&g.output, "output", "o", outputTable, "output `FORMAT`: table (text for people) or json (protojson of the response)")
	fs.BoolVar(&g.json, "json", false, "print responses as JSON (the same as --output json)")
	fs.DurationVar(&g.timeout, "timeout", defaultTimeout, "deadline `DUR` of each call")
}

// applyEnvDefaults applies the environment to the global flags the command line left
// unset, and checks them.
func (g *globals) applyEnvDefaults(fs *pflag.FlagSet) error {
	if v := strings.TrimSpace(os.Getenv("LEDGER_ADMIN_ADDR")); v != "" && !fs.Changed("addr") {
		g.addr = v
	}
	if !fs.Changed("token") {
		g.token = strings.TrimSpace(os.Getenv("LEDGER_ADMIN_TOKEN"))
	}
	if v := strings.TrimSpace(os.Getenv("LEDGER_ADMIN_TLS")); v != "" && !fs.Changed("tls") {
		tls, err := strconv.ParseBool(v)
		if err != nil {
			return usagef("LEDGER_ADMIN_TLS=%q: use true or false (1 and 0 work too)", v)
		}
		g.tls = tls
	}
	switch g.output {
	case outputTable:
		if g.json && fs.Changed("output") {
			return usagef("--json and --output table disagree: give one of them")
		}
	case outputJSON:
		g.json = true
	default:
		return usagef("--output %q: use table or json", g.output)
	}
	if g.json {
		g.output = outputJSON
	}
	if g.addr == "" {
		return usagef("--addr is empty: give the AdminService host:port, e.g. --addr %s", defaultAddr)
	}
	if g.timeout <= 0 {
		return usagef("--timeout %s: use a positive duration such as 30s", g.timeout)
	}
	return nil
}

// cli is one invocation.
type cli struct {
	g              globals
	stdin          io.Reader
	stdout, stderr io.Writer
	root           *cobra.Command // the command tree, for completion scripts
	client         ledgerv1.AdminServiceClient
	conn           *grpc.ClientConn
}

// command is one row of the command table: ledgerctl GROUP NAME ARGS.
type command struct {
	name    string // "create"
	args    string // the synopsis after the name: "[--id ID] --name NAME"
	summary string // one line for ledgerctl --help
	help    string // the paragraph of ledgerctl GROUP NAME --help
	setup   func(fs *pflag.FlagSet) func(c *cli, ctx context.Context, args []string) error
}

// commandGroup is a group of the command table.
type commandGroup struct {
	name     string
	commands []command
}

// commandTable is every command, in the order ledgerctl --help lists them.
// The cobra command tree is built from it (newRoot), and dispatch, shell
// completion, ledgerctl --help and each group's and command's usage come from
// that tree, so none of them can leave a command out.
var commandTable = []commandGroup{
	{"tenants", tenantCommands},
	{"magento", magentoCommands},
	{"sage", sageCommands},
	{"oauth", oauthCommands},
	{"runs", runCommands},
	{"backfill", backfillCommands},
	{"xref", xrefCommands},
	{"policy", policyCommands},
	{"refdata", refdataCommands},
	{"dlq", dlqCommands},
	{"reconcile", reconcileCommands},
	{"completion", completionCommands},
}

// groupDefaults are the commands a group runs when a flag follows its name:
// "ledgerctl reconcile --tenant T --since DATE" is "reconcile run".
var groupDefaults = map[string]string{"reconcile": "run"}

// synopsis is how the command is typed: "tenants create [--id ID] --name NAME".
func (g commandGroup) synopsis(c command) string {
	return strings.TrimSpace(g.name + " " + c.name + " " + c.args)
}

// groupNames are the groups, in table order.
func groupNames() []string {
	var names []string
	for _, g := range commandTable {
		names = append(names, g.name)
	}
	return names
}

// run executes one command line (without the program name).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runIO(ctx, args, os.Stdin, stdout, stderr)
}

// runIO is run with standard input given (dlq purge reads its confirmation).
func runIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(c)
	root.SetArgs(normaliseArgs(root, args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

// newRoot builds the cobra command tree from the command table. Every
// command's usage is generated from the tree (helpFor); cobra's own error
// printing is off: report prints the one error and picks the exit code.
func newRoot(c *cli) *cobra.Command {
	cobra.EnableCommandSorting = false // keep the table's order
	root := &cobra.Command{
		Use:               "ledgerctl",
		Short:             "the operator CLI for Ledger's AdminService",
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true}, // the table has its own completion group
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command group %q: use one of %s (ledgerctl --help lists the commands)", args[0], strings.Join(groupNames(), ", "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return usagef("no command given\n\n%s", usage(cmd.Root()))
		},
	}
	c.root = root
	c.g.register(root.PersistentFlags())
	registerChoices(root, "output", outputTable, outputJSON)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		name := strings.TrimPrefix(cmd.CommandPath(), "ledgerctl ")
		if cmd == cmd.Root() {
			return usagef("%v\n\n%s", err, usage(cmd.Root()))
		}
		return usagef("%s: %v\n\n%s", name, err, helpFor(cmd))
	})
	root.SetHelpFunc(func(cmd *cobra.Command, _ []string) { fmt.Fprint(cmd.OutOrStdout(), helpFor(cmd)) })
	for _, g := range commandTable {
		var names []string
		for _, row := range g.commands {
			names = append(names, row.name)
		}
		group := &cobra.Command{
			Use:   g.name,
			Short: strings.Join(names, ", "),
			Args: func(cmd *cobra.Command, args []string) error {
				if len(args) > 0 {
					return usagef("unknown command %q %q\n\n%s", cmd.Name(), args[0], groupUsage(cmd))
				}
				return nil
			},
			RunE: func(cmd *cobra.Command, args []string) error {
				return usagef("%s: which command?\n\n%s", cmd.Name(), groupUsage(cmd))
			},
		}
		for _, row := range g.commands {
			leaf := &cobra.Command{
				Use:   strings.TrimSpace(row.name + " " + row.args),
				Short: row.summary,
				Long:  row.help,
				Args:  cobra.ArbitraryArgs, // each command checks its own arguments and says what it wants
			}
			exec := row.setup(leaf.Flags())
			leaf.RunE = func(cmd *cobra.Command, args []string) error {
				if err := c.g.applyEnvDefaults(cmd.Flags()); err != nil {
					return err
				}
				return exec(c, cmd.Context(), args)
			}
			completeChoices(c, leaf)
			group.AddCommand(leaf)
		}
		root.AddCommand(group)
	}
	return root
}

// normaliseArgs keeps the command lines of the standard library's flag
// package working: a long flag with one dash (-json, -tenant=acme) becomes
// --json, which pflag would otherwise read as the shorthands -j -s -o -n. It
// also inserts a group's default command (groupDefaults) when a flag follows
// the group's name.
func normaliseArgs(root *cobra.Command, args []string) []string {
	long := map[string]bool{"help": true}
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) { long[f.Name] = true })
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
	out := make([]string, 0, len(args)+1)
	for i, a := range args {
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		if name, _, _ := strings.Cut(a, "="); len(name) > 2 && name[0] == '-' && name[1] != '-' && long[name[1:]] {
			a = "-" + a
		}
		out = append(out, a)
	}
	// The group is the first word that is neither a global flag nor its value.
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") {
			if f := globalFlag(root, a); f != nil && f.NoOptDefVal == "" && !strings.Contains(a, "=") {
				i++ // its value
			}
			continue
		}
		if def, ok := groupDefaults[a]; ok && i+1 < len(out) && strings.HasPrefix(out[i+1], "-") &&
			out[i+1] != "--help" && out[i+1] != "-h" {
			out = append(out[:i+1], append([]string{def}, out[i+1:]...)...)
		}
		break
	}
	return out
}

// globalFlag returns the global flag arg names (--addr, --addr=x or -o).
func globalFlag(root *cobra.Command, arg string) *pflag.Flag {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	if strings.HasPrefix(arg, "--") {
		return root.PersistentFlags().Lookup(name)
	}
	if len(name) == 1 {
		return root.PersistentFlags().ShorthandLookup(name)
	}
	return nil
}

// helpFor is the help text of any command of the tree.
func helpFor(cmd *cobra.Command) string {
	switch {
	case !cmd.HasParent():
		return usage(cmd)
	case cmd.HasSubCommands():
		return groupUsage(cmd)
	default:
		return commandUsage(cmd)
	}
}

// leafSynopsis is how a command of the tree is typed, after "ledgerctl ".
func leafSynopsis(cmd *cobra.Command) string {
	return cmd.Parent().Name() + " " + cmd.Use
}

// usage is the text of ledgerctl --help, generated from the command tree and
// the global flags.
func usage(root *cobra.Command) string {
	var b strings.Builder
	b.WriteString("ledgerctl is the operator CLI for Ledger's AdminService.\n\n" +
		"Usage:\n  ledgerctl [global flags] <group> <command> [flags]\n\nCommands:\n")
	const width = 40 // synopses longer than this put the summary on the next line
	for _, g := range root.Commands() {
		if !g.IsAvailableCommand() {
			continue // help and cobra's hidden __complete
		}
		for _, c := range g.Commands() {
			if syn := leafSynopsis(c); len(syn) <= width {
				fmt.Fprintf(&b, "  %-*s %s\n", width, syn, c.Short)
			} else {
				fmt.Fprintf(&b, "  %s\n  %*s %s\n", syn, width, "", c.Short)
			}
		}
	}
	b.WriteString("\nGlobal flags (also accepted after the command):\n")
	b.WriteString(globalFlagUsage())
	b.WriteString("\nRun \"ledgerctl <group> <command> --help\" for a command's flags.\n" + exitStatusHelp)
	return b.String()
}

// exitStatusHelp closes ledgerctl --help; README.md says the same.
const exitStatusHelp = "Exit status: 0 success; 1 the service refused or failed the request, or part of it failed\n" +
	"(a run not retried, a dead letter not replayed or purged, a purge not confirmed); 2 usage error\n" +
	"(unknown command, missing or bad flag or argument).\n"

// globalFlagUsage lists the global flags with their built-in defaults (never
// the environment's: it holds the token).
func globalFlagUsage() string {
	fs := pflag.NewFlagSet("ledgerctl", pflag.ContinueOnError)
	new(globals).register(fs)
	fs.SortFlags = false
	return flagUsage(fs)
}

// flagUsage lists fs's flags (but --help) one a line: the flag, the value
// named in backquotes in its usage, the usage and a default other than the
// zero value.
func flagUsage(fs *pflag.FlagSet) string {
	type line struct{ flag, text string }
	var lines []line
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		value, text := pflag.UnquoteUsage(f)
		if !strings.Contains(f.Usage, "`") {
			value = "" // pflag's type name (string, int) says nothing the text does not
		}
		if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "[]" {
			if strings.HasSuffix(text, ")") && strings.Contains(text, "(env ") { // "(env X)" → "(env X, default D)"
				text = strings.TrimSuffix(text, ")") + ", default " + def + ")"
			} else {
				text += " (default " + def + ")"
			}
		}
		name := "--" + f.Name
		if f.Shorthand != "" {
			name = "-" + f.Shorthand + ", " + name
		}
		l := line{strings.TrimSpace(name + " " + value), text}
		width = max(width, len(l.flag))
		lines = append(lines, l)
	})
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, l.flag, l.text)
	}
	return b.String()
}

func groupUsage(g *cobra.Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Commands of %s:\n", g.Name())
	for _, c := range g.Commands() {
		fmt.Fprintf(&b, "  ledgerctl %s\n", leafSynopsis(c))
	}
	return b.String()
}

func commandUsage(cmd *cobra.Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: ledgerctl %s\n\n%s\n\n", leafSynopsis(cmd), cmd.Long)
	if local := flagUsage(cmd.LocalNonPersistentFlags()); local != "" {
		b.WriteString("Flags:\n" + local + "\n")
	}
	b.WriteString("Global flags:\n" + globalFlagUsage())
	return b.String()
}

// dial connects lazily; every call carries the token and the deadline.
func (c *cli) dial() (ledgerv1.AdminServiceClient, error) {
	if c.client != nil {
		return c.client, nil
	}
	creds := insecure.NewCredentials()
	if c.g.tls {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(c.g.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("--addr %q: %w", c.g.addr, err)
	}
	c.conn, c.client = conn, ledgerv1.NewAdminServiceClient(conn)
	return c.client, nil
}

// call runs one RPC with the token and deadline, and explains its failure.
func call[Req, Resp any](ctx context.Context, c *cli, rpc func(ledgerv1.AdminServiceClient, context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	var zero Resp
	client, err := c.dial()
	if err != nil {
		return zero, err
	}
	defer func() {
		if c.conn != nil {
			_ = c.conn.Close()
			c.conn, c.client = nil, nil
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, c.g.timeout)
	defer cancel()
	if c.g.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.g.token)
	}
	resp, err := rpc(client, ctx, req)
	if err != nil {
		return zero, c.explain(err)
	}
	return resp, nil
}

// stream runs a server-streaming RPC until the server ends it, calling each
// for every message. It has no deadline (a backfill may take hours) but stops
// on Ctrl-C, which the server sees as a cancellation.
func stream[Req, Resp any](ctx context.Context, c *cli,
	rpc func(ledgerv1.AdminServiceClient, context.Context, Req, ...grpc.CallOption) (grpc.ServerStreamingClient[Resp], error),
	req Req, each func(*Resp) error) error {
	client, err := c.dial()
	if err != nil {
		return err
	}
	defer func() {
		_ = c.conn.Close()
		c.conn, c.client = nil, nil
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c.g.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.g.token)
	}
	s, err := rpc(client, ctx, req)
	if err != nil {
		return c.explain(err)
	}
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return errInterrupted
			}
			return c.explain(err)
		}
		if err := each(m); err != nil {
			return err
		}
	}
}

// errInterrupted is a stream stopped by the operator (Ctrl-C).
var errInterrupted = errors.New("interrupted")

// explain turns a gRPC status into an operator message.
func (c *cli) explain(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unauthenticated:
		hint := "pass --token or set LEDGER_ADMIN_TOKEN to the service's ADMIN_TOKEN"
		if c.g.token != "" {
			hint = "the token was refused: check --token / LEDGER_ADMIN_TOKEN against the service's ADMIN_TOKEN"
		}
		return fmt.Errorf("%s (%s)", st.Message(), hint)
	case codes.Unavailable:
		if strings.Contains(st.Message(), "connection") || strings.Contains(st.Message(), "dial") {
			return fmt.Errorf("cannot reach the admin service at %s: %s (is it running? set --addr or LEDGER_ADMIN_ADDR)", c.g.addr, st.Message())
		}
	case codes.DeadlineExceeded:
		return fmt.Errorf("no answer within %s from %s: %s (raise --timeout or check the service)", c.g.timeout, c.g.addr, st.Message())
	case codes.Unimplemented:
		return fmt.Errorf("%s (the admin service at %s is older than this ledgerctl: upgrade the service)", st.Message(), c.g.addr)
	}
	return errors.New(st.Message())
}
