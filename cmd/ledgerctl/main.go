package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

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
	json    bool
	timeout time.Duration
}

// register defines the global flags on fs. A word in backquotes is the
// flag's value in usage texts.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.addr, "addr", g.addr, "`HOST:PORT` of the AdminService (env LEDGER_ADMIN_ADDR)")
	fs.StringVar(&g.token, "token", g.token, "operator `TOKEN` (env LEDGER_ADMIN_TOKEN)")
	fs.BoolVar(&g.tls, "tls", g.tls, "use TLS to reach the service (env LEDGER_ADMIN_TLS=true)")
	fs.BoolVar(&g.json, "json", g.json, "print responses as JSON")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "deadline `DUR` of each call")
}

// cli is one invocation.
type cli struct {
	g              globals
	stdout, stderr io.Writer
	client         ledgerv1.AdminServiceClient
	conn           *grpc.ClientConn
}

// command is one row of the command table: ledgerctl GROUP NAME ARGS.
type command struct {
	name    string // "create"
	args    string // the synopsis after the name: "[--id ID] --name NAME"
	summary string // one line for ledgerctl --help
	help    string // the paragraph of ledgerctl GROUP NAME --help
	setup   func(fs *flag.FlagSet) func(c *cli, ctx context.Context, args []string) error
}

// commandGroup is a group of the command table.
type commandGroup struct {
	name     string
	commands []command
}

// commandTable is every command, in the order ledgerctl --help lists them.
// Dispatch, ledgerctl --help and each group's and command's usage are
// generated from it, so none of them can leave a command out.
var commandTable = []commandGroup{
	{"tenants", tenantCommands},
	{"magento", magentoCommands},
	{"sage", sageCommands},
	{"runs", runCommands},
	{"backfill", backfillCommands},
	{"xref", xrefCommands},
	{"policy", policyCommands},
	{"refdata", refdataCommands},
	{"dlq", dlqCommands},
	{"reconcile", reconcileCommands},
}

// groupDefaults are the commands a group runs when a flag follows its name:
// "ledgerctl reconcile --tenant T --since DATE" is "reconcile run".
var groupDefaults = map[string]string{"reconcile": "run"}

// synopsis is how the command is typed: "tenants create [--id ID] --name NAME".
func (g commandGroup) synopsis(c command) string {
	return strings.TrimSpace(g.name + " " + c.name + " " + c.args)
}

// findGroup returns the group named name.
func findGroup(name string) (commandGroup, bool) {
	i := slices.IndexFunc(commandTable, func(g commandGroup) bool { return g.name == name })
	if i < 0 {
		return commandGroup{}, false
	}
	return commandTable[i], true
}

// find returns the group's command named name.
func (g commandGroup) find(name string) (command, bool) {
	i := slices.IndexFunc(g.commands, func(c command) bool { return c.name == name })
	if i < 0 {
		return command{}, false
	}
	return g.commands[i], true
}

// groupNames are the groups, sorted.
func groupNames() []string {
	var names []string
	for _, g := range commandTable {
		names = append(names, g.name)
	}
	slices.Sort(names)
	return names
}

// run executes one command line (without the program name).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := &cli{stdout: stdout, stderr: stderr}
	c.g = globals{addr: defaultAddr, timeout: defaultTimeout}
	if v := strings.TrimSpace(os.Getenv("LEDGER_ADMIN_ADDR")); v != "" {
		c.g.addr = v
	}
	c.g.token = strings.TrimSpace(os.Getenv("LEDGER_ADMIN_TOKEN"))
	if v := strings.TrimSpace(os.Getenv("LEDGER_ADMIN_TLS")); v != "" {
		tls, err := strconv.ParseBool(v)
		if err != nil {
			return usagef("LEDGER_ADMIN_TLS=%q: use true or false (1 and 0 work too)", v)
		}
		c.g.tls = tls
	}

	top := flag.NewFlagSet("ledgerctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	c.g.register(top)
	help := top.Bool("help", false, "")
	top.BoolVar(help, "h", false, "")
	if err := top.Parse(args); err != nil {
		return usagef("%v\n\n%s", err, usage())
	}
	rest := top.Args()
	if *help || (len(rest) > 0 && rest[0] == "help") {
		fmt.Fprint(stdout, usage())
		return nil
	}
	if len(rest) == 0 {
		return usagef("no command given\n\n%s", usage())
	}
	grp, ok := findGroup(rest[0])
	if !ok {
		return usagef("unknown command group %q: use one of %s (ledgerctl --help lists the commands)", rest[0], strings.Join(groupNames(), ", "))
	}
	if def, ok := groupDefaults[grp.name]; ok && len(rest) > 1 && strings.HasPrefix(rest[1], "-") {
		rest = slices.Insert(rest, 1, def)
	}
	if len(rest) < 2 {
		return usagef("%s: which command?\n\n%s", rest[0], groupUsage(grp))
	}
	cmd, ok := grp.find(rest[1])
	if !ok {
		return usagef("unknown command %q %q\n\n%s", rest[0], rest[1], groupUsage(grp))
	}
	name := rest[0] + " " + rest[1]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.g.register(fs)
	exec := cmd.setup(fs)
	positional, err := parseInterleaved(fs, rest[2:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, commandUsage(grp, cmd, fs))
		return nil
	}
	if err != nil {
		return usagef("%s: %v\n\n%s", name, err, commandUsage(grp, cmd, fs))
	}
	if c.g.addr == "" {
		return usagef("--addr is empty: give the AdminService host:port, e.g. --addr %s", defaultAddr)
	}
	if c.g.timeout <= 0 {
		return usagef("--timeout %s: use a positive duration such as 30s", c.g.timeout)
	}
	return exec(c, ctx, positional)
}

// parseInterleaved parses flags that may come before or after positional
// arguments, returning the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// usage is the text of ledgerctl --help, generated from the command table
// and the global flags.
func usage() string {
	var b strings.Builder
	b.WriteString("ledgerctl is the operator CLI for Ledger's AdminService.\n\n" +
		"Usage:\n  ledgerctl [global flags] <group> <command> [flags]\n\nCommands:\n")
	const width = 40 // synopses longer than this put the summary on the next line
	for _, g := range commandTable {
		for _, c := range g.commands {
			if syn := g.synopsis(c); len(syn) <= width {
				fmt.Fprintf(&b, "  %-*s %s\n", width, syn, c.summary)
			} else {
				fmt.Fprintf(&b, "  %s\n  %*s %s\n", syn, width, "", c.summary)
			}
		}
	}
	b.WriteString("\nGlobal flags (also accepted after the command):\n")
	fs := flag.NewFlagSet("ledgerctl", flag.ContinueOnError)
	defaults := globals{addr: defaultAddr, timeout: defaultTimeout} // never the environment's: it holds the token
	defaults.register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		value, text := flag.UnquoteUsage(f)
		if def := f.DefValue; def != "" && def != "false" {
			if strings.HasSuffix(text, ")") { // "(env X)" → "(env X, default D)"
				text = strings.TrimSuffix(text, ")") + ", default " + def + ")"
			} else {
				text += " (default " + def + ")"
			}
		}
		fmt.Fprintf(&b, "  %-18s %s\n", strings.TrimSpace("--"+f.Name+" "+value), text)
	})
	b.WriteString("\nRun \"ledgerctl <group> <command> --help\" for a command's flags.\n" +
		"Exit status: 0 success, 1 failure, 2 usage error.\n")
	return b.String()
}

func groupUsage(g commandGroup) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Commands of %s:\n", g.name)
	for _, c := range g.commands {
		fmt.Fprintf(&b, "  ledgerctl %s\n", g.synopsis(c))
	}
	return b.String()
}

func commandUsage(g commandGroup, cmd command, fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: ledgerctl %s\n\n%s\n\nFlags:\n", g.synopsis(cmd), cmd.help)
	fs.VisitAll(func(f *flag.Flag) {
		_, text := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  --%-9s %s\n", f.Name, text)
	})
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
	}
	return errors.New(st.Message())
}
