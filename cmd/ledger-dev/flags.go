package main

import (
	"flag"
	"io"
)

func newFlagSet(f *flags) *flag.FlagSet {
	fs := flag.NewFlagSet("ledger-dev", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&f.invoices, "invoices", f.invoices, "demo invoices to raise")
	fs.IntVar(&f.customers, "customers", f.customers, "demo customers")
	fs.DurationVar(&f.timeout, "timeout", f.timeout, "demo: how long to wait for the outbox to settle")
	fs.StringVar(&f.state, "state", f.state, "where NATS keeps its store")
	fs.BoolVar(&f.verbose, "v", f.verbose, "log to stderr")
	fs.BoolVar(&f.relay, "relay", f.relay, "also run a relay-connected demo shop (needs mariadb-server)")
	return fs
}
