package main

import (
	"context"
	"math/rand/v2"
	"net/http"
	"os"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/process"
	"github.com/ledgersync/ledger/libs/sage/budget"
	"github.com/ledgersync/ledger/libs/secrets"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// TestRecoveryAfterLosingTheNATSStore is the backup-and-recovery runbook as a
// test. With the writer stopped, a batch of invoices is mapped and waits in
// the SAGE stream; then the NATS server loses its store (it comes back empty
// on the same address). The services make their streams and consumers again
// by themselves; the runs that were in flight stay unfinished until an
// operator runs `ledgerctl runs recover` (AdminService.RecoverRuns), after
// which every invoice reaches Sage once. Then Postgres "comes back from an
// older backup" that predates those invoices' Sage documents (their
// entity_xref rows are gone, their runs unfinished): recovering again creates
// no duplicate in Sage.
func TestRecoveryAfterLosingTheNATSStore(t *testing.T) {
	if testing.Short() {
		t.Skip("loses a NATS store mid-run")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ns := devtest.NATSServer(t)
	t.Setenv(devstack.EnvNATSURL, ns.ClientURL())
	st, log := startStack(t, ctx, stack.Options{})
	defer st.Close()
	const tenant = "recovering"
	if err := st.Onboard(ctx, tenant, "Recovering shop"); err != nil {
		t.Fatal(err)
	}
	if err := st.StopService("sage-writer"); err != nil {
		t.Fatal(err)
	}
	seed := st.Shop.Seed(rand.New(rand.NewPCG(15, 7)), magentosim.Options{Customers: 5, Invoices: 30})
	expected := stack.ExpectSeed(seed)
	unfinished := func() int {
		var n int
		if err := st.Store.Pool().QueryRow(ctx, `SELECT count(*) FROM sync_runs WHERE tenant_id = $1 AND status IN ('pending', 'running')`, tenant).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	devtest.Eventually(t, "every event mapped and waiting for the writer", func() bool {
		var running int
		_ = st.Store.Pool().QueryRow(ctx, `SELECT count(*) FROM sync_runs WHERE tenant_id = $1 AND status = 'running'`, tenant).Scan(&running)
		return running == len(expected)
	}, devtest.Until(ctx))

	// The store is lost: the server comes back empty on the same address.
	storeDir := ns.StoreDir()
	ns = devtest.RestartNATS(t, ns, func() {
		if err := os.RemoveAll(storeDir); err != nil {
			t.Fatal(err)
		}
	})
	writerCtx, stopWriter := context.WithCancel(ctx)
	writer, err := process.Start(writerCtx, log.With("service", "sage-writer"), st.Settings(), sagewriter.Program(sagewriter.Config{
		Addr: "127.0.0.1:0", Endpoints: st.SageEndpoints(), ClientID: stack.SageClientID,
		ClientSecret: secrets.String(stack.SageClientSecret), TenantScan: stack.DevTenantScan,
		Budget: budget.Config{BusinessPerMinute: stack.DevBusinessPerMinute, BusinessBurst: stack.DevBusinessBurst}}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		stopWriter()
		if err := writer.Wait(); err != nil {
			t.Errorf("writer: %v", err)
		}
	}()
	// Every service reconnects and makes its streams and consumers again.
	for _, url := range []string{st.IngestURL, st.MapperURL, st.StateCallbackURL, st.AdminHTTPURL, writer.URL()} {
		devtest.Eventually(t, url+" ready again", func() bool {
			resp, err := http.Get(url + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, devtest.Until(ctx))
	}
	if n := unfinished(); n != len(expected) {
		t.Fatalf("%d unfinished runs after the loss, want %d", n, len(expected))
	}

	admin, closeAdmin, err := st.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer closeAdmin()
	recoverAll := func(what string) {
		t.Helper()
		// The runs have been idle "for a while": recovery leaves anything that
		// changed within idle_for alone, and the test does not wait 10 minutes.
		if _, err := st.Store.Pool().Exec(ctx, `UPDATE sync_runs SET updated_at = now() - interval '11 minutes'
			WHERE tenant_id = $1 AND status IN ('pending', 'running')`, tenant); err != nil {
			t.Fatal(err)
		}
		dry, err := admin.RecoverRuns(ctx, &ledgerv1.RecoverRunsRequest{TenantId: tenant, DryRun: true})
		if err != nil || int(dry.GetFound()) != unfinished() || dry.GetRepublished() != 0 {
			t.Fatalf("%s: dry run %v, %v; want %d found, none republished", what, dry, err, unfinished())
		}
		if _, err := admin.RecoverRuns(ctx, &ledgerv1.RecoverRunsRequest{TenantId: tenant, IdleFor: durationpb.New(time.Second)}); err == nil {
			t.Fatalf("%s: an idle_for of 1s was accepted", what)
		}
		res, err := admin.RecoverRuns(ctx, &ledgerv1.RecoverRunsRequest{TenantId: tenant})
		if err != nil || res.GetRepublished() != dry.GetFound() || len(res.GetFailed()) != 0 {
			t.Fatalf("%s: recover %v, %v", what, res, err)
		}
		devtest.Eventually(t, "every recovered run finished", func() bool { return unfinished() == 0 }, devtest.Until(ctx))
		wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
		sum := st.WaitSettled(wctx, expected)
		wcancel()
		if !sum.OK() || sum.Synced != len(expected) || st.SageDuplicates() != 0 {
			t.Fatalf("%s: %+v, %d duplicates", what, sum, st.SageDuplicates())
		}
		if n := len(st.Sage.Invoices(st.Sage.LeadBusinessID())); n != len(seed.InvoiceIDs) {
			t.Fatalf("%s: Sage has %d invoices, want %d", what, n, len(seed.InvoiceIDs))
		}
		t.Logf("%s: %d runs republished; %s", what, res.GetRepublished(), sum)
	}
	recoverAll("after losing the NATS store")

	// Postgres comes back from a backup taken before the invoices reached
	// Sage: their links are gone and their runs unfinished.
	if _, err := st.Store.Pool().Exec(ctx, `DELETE FROM entity_xref WHERE tenant_id = $1 AND kind = 'invoice'`, tenant); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Store.Pool().Exec(ctx, `UPDATE sync_runs SET status = 'running', finished_at = NULL, sage_id = ''
		WHERE tenant_id = $1 AND entity_type = 'invoice'`, tenant); err != nil {
		t.Fatal(err)
	}
	recoverAll("after restoring an older database")
}
