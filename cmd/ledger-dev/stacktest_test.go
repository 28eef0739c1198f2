package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/policy"
)

// startStack starts the whole pipeline in-process for one test: a fresh
// state directory unless opts names one, every service logging as JSON to a
// file that is printed when the test fails. It returns the stack (the caller
// closes it) and that logger, for what the test starts beside it.
func startStack(t *testing.T, ctx context.Context, opts stack.Options) (*stack.Stack, *slog.Logger) {
	t.Helper()
	logFile, err := os.Create(filepath.Join(t.TempDir(), "stack.log"))
	if err != nil {
		t.Fatal(err)
	}
	dumpOnFailure(t, "stack log", logFile.Name())
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	opts.Log = slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st, err := stack.Start(ctx, opts)
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	return st, opts.Log
}

// editPolicy applies edit to tenant's stored policy and stores it. banks are
// the ids of the business's bank accounts, from the reference cache the
// onboarding filled.
func editPolicy(t *testing.T, ctx context.Context, st *stack.Stack, tenant string, edit func(p *policy.Policy, banks []string)) {
	t.Helper()
	doc, err := st.Store.Policy(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := st.Store.RefCache(ctx, tenant, policy.RefBankAccounts)
	if err != nil {
		t.Fatal(err)
	}
	var accounts []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &accounts); err != nil || len(accounts) == 0 {
		t.Fatalf("bank accounts in the reference cache: %s, %v", raw, err)
	}
	banks := make([]string, len(accounts))
	for i, a := range accounts {
		banks[i] = a.ID
	}
	edit(&pol, banks)
	if err := st.Store.SetPolicy(ctx, tenant, pol.JSON()); err != nil {
		t.Fatal(err)
	}
}
