package main

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/process"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/services/admin"
	"github.com/ledgersync/ledger/services/ingest"
	"github.com/ledgersync/ledger/services/mapper"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
	"github.com/ledgersync/ledger/services/statecallback"
	magentosim "github.com/ledgersync/ledger/sim/magento"
)

// TestServicesStartBeforeTheirDependencies starts every service — through the
// Program its binary runs — while neither its Postgres nor its NATS answers
// (each reaches them through a gate that refuses connections until opened).
// Each serves /healthz, says on /readyz what it waits for, and becomes ready
// by itself once both arrive. Then the stack's own mapper, writer and
// statecallback stop, so the late ones carry a batch of invoices from the shop
// to Sage and back to the shop's sync-state table; the late ingest accepts a
// webhook and the late admin serves its dashboard.
func TestServicesStartBeforeTheirDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second replica of every service")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, log := startStack(t, ctx, stack.Options{})
	defer st.Close()
	const tenant = "late-shop"
	if err := st.Onboard(ctx, tenant, "Late shop"); err != nil {
		t.Fatal(err)
	}

	db, err := url.Parse(st.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	pgGate, err := devstack.NewGate(db.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer pgGate.Close()
	natsGate, err := devstack.NewGate(strings.TrimPrefix(st.NATSURL, "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	defer natsGate.Close()
	db.Host = pgGate.Addr
	settings := st.Settings()
	settings.DatabaseURL, settings.NATSURL = db.String(), "nats://"+natsGate.Addr

	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sage := st.SageEndpoints()
	programs := []process.Program{
		ingest.Program(ingest.Config{Addr: "127.0.0.1:0"}),
		mapper.Program(mapper.Config{Addr: "127.0.0.1:0"}),
		sagewriter.Program(sagewriter.Config{Addr: "127.0.0.1:0", Endpoints: sage, ClientID: stack.SageClientID,
			ClientSecret: secrets.String(stack.SageClientSecret), TenantScan: stack.DevTenantScan}),
		statecallback.Program(statecallback.Config{Addr: "127.0.0.1:0"}),
		admin.Program(admin.Config{HTTPAddr: httpLn.Addr().String(), GRPCAddr: grpcLn.Addr().String(),
			HTTPListener: httpLn, GRPCListener: grpcLn, PublicURL: "http://" + httpLn.Addr().String(),
			AdminToken: secrets.String(st.AdminToken), Env: "dev", LedgerBaseURL: st.IngestURL,
			Sage: sage, SageClientID: stack.SageClientID, SageClientSecret: secrets.String(stack.SageClientSecret)}),
	}
	runCtx, stopLate := context.WithCancel(ctx)
	late := map[string]*process.Runner{}
	for _, p := range programs {
		r, err := process.Start(runCtx, log.With("service", "late-"+p.Name), settings, p)
		if err != nil {
			t.Fatal(err)
		}
		late[p.Name] = r
	}
	defer func() {
		stopLate()
		for name, r := range late {
			if err := r.Wait(); err != nil {
				t.Errorf("late %s stopped with %v", name, err)
			}
		}
	}()

	readyz := func(r *process.Runner) (int, string) {
		resp, err := http.Get(r.URL() + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for name, r := range late {
		resp, err := http.Get(r.URL() + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /healthz before its dependencies: %v %v", name, resp, err)
		}
		resp.Body.Close()
		devtest.Eventually(t, name+" saying it waits for the database", func() bool {
			code, body := readyz(r)
			return code == http.StatusServiceUnavailable && strings.Contains(body, "LEDGER_DATABASE_URL")
		}, devtest.Until(ctx))
	}
	if err := pgGate.Open(); err != nil {
		t.Fatal(err)
	}
	for name, r := range late {
		devtest.Eventually(t, name+" saying it waits for NATS", func() bool {
			code, body := readyz(r)
			return code == http.StatusServiceUnavailable && strings.Contains(body, "LEDGER_NATS_URL")
		}, devtest.Until(ctx))
	}
	if err := natsGate.Open(); err != nil {
		t.Fatal(err)
	}
	for name, r := range late {
		devtest.Eventually(t, name+" ready", func() bool {
			code, _ := readyz(r)
			return code == http.StatusOK
		}, devtest.Until(ctx))
	}

	// The late consumers carry the work alone.
	for _, name := range []string{"mapper", "sage-writer", "statecallback"} {
		if err := st.StopService(name); err != nil {
			t.Fatal(err)
		}
	}
	seed := st.Shop.Seed(rand.New(rand.NewPCG(16, 3)), magentosim.Options{Customers: 5, Invoices: 20})
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
	sum := st.WaitSettled(wctx, stack.ExpectSeed(seed))
	wcancel()
	if !sum.OK() || sum.Synced != len(seed.InvoiceIDs)+len(seed.CustomerIDs) {
		t.Fatalf("the late services did not carry the batch: %+v", sum)
	}

	// The late ingest answers a (re-delivered) webhook; the late admin its
	// dashboard.
	tn, err := st.Store.Tenant(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	row := st.Shop.Outbox()[0]
	tok, err := magento.MintOutbound(tn.Binding.APIKey, tenant, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if code, body := postRaw(t, ctx, late["ingest"].URL(), tenant, row.EventName, row.IdempotencyKey, tok, []byte(row.Payload)); code/100 != 2 {
		t.Fatalf("late ingest: HTTP %d %s", code, body)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, late["admin"].URL()+"/dashboard", nil)
	req.Header.Set("Authorization", "Bearer "+st.AdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("late admin dashboard: %v %v", resp, err)
	}
	resp.Body.Close()
	t.Logf("%d events carried by services started before their dependencies: %+v", len(seed.InvoiceIDs)+len(seed.CustomerIDs), sum)
}
