package sagewriter_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// fleet is a world of many tenants, each authorised through the real OAuth
// flow as its own Sage user with its own business.
type fleet struct {
	tb     testing.TB
	dbURL  string
	key    string // LEDGER_SECRET_KEY of the sealer
	sealer *secrets.Sealer
	ns     *server.Server
	st     *store.Store
	nc     *nats.Conn
	js     jetstream.JetStream
	sim    *sagesim.Server
	srv    *httptest.Server
	oauth  sage.OAuth
	writes writeLog // when each business's invoices were created

	mu       sync.Mutex
	business map[string]string // tenant → business id
	ledger   map[string]string // tenant → sales ledger account
	bank     map[string]string // tenant → bank account
}

func newFleet(tb testing.TB, simCfg sagesim.Config) *fleet {
	tb.Helper()
	ctx := tb.Context()
	sealer, key := secrets.NewRandomKeyRing()
	dbURL := devtest.Database(tb)
	st, err := store.Open(ctx, dbURL, sealer)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(st.Close)
	ns := devtest.NATSServer(tb)
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, 1); err != nil {
		tb.Fatal(err)
	}
	sim := sagesim.New(simCfg)
	f := &fleet{}
	srv := httptest.NewServer(f.writes.observe(sim.Handler()))
	tb.Cleanup(srv.Close)
	*f = fleet{tb: tb, dbURL: dbURL, key: key, sealer: sealer, ns: ns, st: st, nc: nc, js: js, sim: sim, srv: srv,
		oauth: sage.OAuth{Endpoints: sage.At(srv.URL), ClientID: sagesim.DefaultClientID,
			ClientSecret: sagesim.DefaultClientSecret, RedirectURL: redirectURL, HTTP: srv.Client()},
		business: map[string]string{}, ledger: map[string]string{}, bank: map[string]string{}}
	return f
}

// addTenants creates n tenants named prefix-0 … and authorises each.
func (f *fleet) addTenants(prefix string, n int) []string {
	f.tb.Helper()
	out := make([]string, n)
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := f.st.CreateTenant(f.tb.Context(), id, id); err != nil {
			f.tb.Fatal(err)
		}
		f.authorise(id)
		out[i] = id
	}
	return out
}

// authorise runs the authorization-code flow as the tenant's own Sage user and
// stores tokens and business as the admin's callback does.
func (f *fleet) authorise(tenant string) {
	f.tb.Helper()
	ctx := f.tb.Context()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	authURL := f.oauth.AuthCodeURLRegion("state-"+tenant, "gb") + "&sim_user=" + url.QueryEscape(tenant)
	resp, err := noFollow.Get(authURL)
	if err != nil {
		f.tb.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "state-"+tenant {
		f.tb.Fatalf("authorize answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	tok, err := f.oauth.Exchange(ctx, loc.Query().Get("code"))
	if err != nil {
		f.tb.Fatal(err)
	}
	if err := f.st.SaveTokens(ctx, tenant, storeTokens(tok)); err != nil {
		f.tb.Fatal(err)
	}
	c := &sage.Client{BaseURL: f.oauth.Endpoints.APIURL, HTTP: f.srv.Client(), Tokens: sage.StaticToken(tok.Access)}
	lead, err := c.LeadBusiness(ctx)
	if err != nil {
		f.tb.Fatal(err)
	}
	if err := f.st.SetSageRegion(ctx, tenant, loc.Query().Get("country")); err != nil {
		f.tb.Fatal(err)
	}
	if err := f.st.SetSageStatus(ctx, tenant, store.StatusActive, lead.ID); err != nil {
		f.tb.Fatal(err)
	}
	c.BusinessID = lead.ID
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ledger[tenant] == "" {
		var l sage.List[sage.Document]
		if err := c.Get(ctx, "/ledger_accounts?visible_in=sales&search=4000", &l); err != nil || len(l.Items) == 0 {
			f.tb.Fatalf("no sales ledger account: %v", err)
		}
		f.ledger[tenant] = l.Items[0].ID
		var banks sage.List[sage.Document]
		if err := c.Get(ctx, "/bank_accounts", &banks); err != nil || len(banks.Items) == 0 {
			f.tb.Fatalf("no bank account: %v", err)
		}
		f.bank[tenant] = banks.Items[0].ID
	}
	f.business[tenant] = lead.ID
}

func (f *fleet) businessOf(tenant string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.business[tenant]
}

// config is the writer's configuration for fleet tests: short delays, a
// generous per-business budget unless a test sets its own.
func (f *fleet) config() sagewriter.Config {
	return sagewriter.Config{
		Endpoints: sage.At(f.srv.URL), ClientID: sagesim.DefaultClientID,
		ClientSecret: secrets.String(sagesim.DefaultClientSecret), RedirectURL: redirectURL,
		Workers: 8, MaxDeliver: 10, PauseDelay: 500 * time.Millisecond, HTTPTimeout: 10 * time.Second,
		RetryBase: 20 * time.Millisecond, RetryCap: time.Second, TenantScan: 200 * time.Millisecond, KeepAliveEvery: -1,
		HTTPClient: f.srv.Client(),
	}
}

// start runs a writer over st until the test ends; quiet discards its logs.
func (f *fleet) start(cfg sagewriter.Config, st *store.Store, quiet bool) *sagewriter.Service {
	f.tb.Helper()
	log := telemetry.Discard()
	if !quiet {
		log = telemetry.Logger("sage-writer", testWriterTB{f.tb})
	}
	svc, err := sagewriter.New(cfg, st, f.js, log)
	if err != nil {
		f.tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	f.tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.tb.Errorf("Run: %v", err)
		}
	})
	return svc
}

type testWriterTB struct{ tb testing.TB }

func (w testWriterTB) Write(p []byte) (int, error) {
	w.tb.Log(string(p))
	return len(p), nil
}

// newRuns records n sync runs for tenant in one statement (as ingest would,
// one by one) and returns their ids.
func (f *fleet) newRuns(tenant, event string, n int) []string {
	f.tb.Helper()
	rows, err := f.st.Pool().Query(f.tb.Context(), `INSERT INTO sync_runs (sync_run_id, tenant_id, event, idempotency_key, entity_type, magento_entity_id)
		SELECT gen_random_uuid(), $1, $2, $2 || ':' || g || ':' || gen_random_uuid(), split_part($2, '.', 1), g
		FROM generate_series(1, $3) g ORDER BY g RETURNING sync_run_id::text`, tenant, event, n)
	if err != nil {
		f.tb.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			f.tb.Fatal(err)
		}
		ids = append(ids, id)
	}
	if rows.Err() != nil || len(ids) != n {
		f.tb.Fatalf("runs: %v (%d)", rows.Err(), len(ids))
	}
	return ids
}

// invoiceWrite is invoice.created of order n for customer c of tenant: ensure
// the contact M<c>, then the invoice INV<n> (total 12.00) on it.
func (f *fleet) invoiceWrite(tenant, run string, n, c int) *ledgerv1.SageWrite {
	f.mu.Lock()
	ledger := f.ledger[tenant]
	f.mu.Unlock()
	ref := fmt.Sprintf("M%d", c)
	contact := map[string]any{"name": "Customer " + ref, "reference": ref, "contact_type_ids": []string{"CUSTOMER"}, "currency_id": "GBP"}
	addr := map[string]any{"address_line_1": "1 High St", "city": "Leeds", "postal_code": "LS1 1AA", "country_id": "GB"}
	invoice := map[string]any{
		"date": "2026-01-15", "reference": fmt.Sprintf("INV%d", n), "currency_id": "GBP",
		"main_address": addr, "delivery_address": addr,
		"invoice_lines": []map[string]any{{
			"description": "Widget", "ledger_account_id": ledger, "quantity": "1", "unit_price": "10.00",
			"tax_rate_id": "GB_STANDARD", "tax_amount": "2.00", "currency_tax_amount": "2.00",
		}},
	}
	return &ledgerv1.SageWrite{
		TenantId: tenant, SyncRunId: run, Event: "invoice.created", EntityType: "invoice", MagentoEntityId: int64(n),
		ResultKey: "invoice",
		Operations: []*ledgerv1.SageOperation{
			{Key: "contact", Resource: ledgerv1.SageResource_SAGE_RESOURCE_CONTACT, XrefKind: "contact", XrefKey: ref,
				Currency: "GBP", Reference: ref, IdempotencyId: idem(tenant+":contact", int64(c)), Body: mustJSON(contact)},
			{Key: "invoice", Resource: ledgerv1.SageResource_SAGE_RESOURCE_SALES_INVOICE, XrefKind: "invoice",
				XrefKey: fmt.Sprint(n), Currency: "GBP", Reference: fmt.Sprintf("INV%d", n), IdempotencyId: idem(tenant+":invoice", int64(n)),
				Body: mustJSON(invoice), Bindings: []*ledgerv1.FieldBinding{{Field: "contact_id", FromKey: "contact"}}},
		},
	}
}

// paymentWrite is invoice.paid of order n (customer c): the contact and the
// invoice are ensured (known through entity_xref), then a customer receipt
// allocated to the invoice, bound by path as the mapper binds it.
func (f *fleet) paymentWrite(tenant, run string, n, c int) *ledgerv1.SageWrite {
	w := f.invoiceWrite(tenant, run, n, c)
	f.mu.Lock()
	bank := f.bank[tenant]
	f.mu.Unlock()
	pay := map[string]any{
		"transaction_type_id": "CUSTOMER_RECEIPT", "bank_account_id": bank, "date": "2026-01-16",
		"total_amount": "12.00", "reference": fmt.Sprintf("PAY%d", n),
		"allocated_artefacts": []map[string]any{{"amount": "12.00"}},
	}
	w.Event, w.EntityType, w.ResultKey = "invoice.paid", "payment", "payment"
	w.Operations = append(w.Operations, &ledgerv1.SageOperation{
		Key: "payment", Resource: ledgerv1.SageResource_SAGE_RESOURCE_CONTACT_PAYMENT, XrefKind: "payment",
		XrefKey: fmt.Sprint(n), Currency: "GBP", Reference: fmt.Sprintf("PAY%d", n), IdempotencyId: idem(tenant+":payment", int64(n)),
		Body: mustJSON(pay), Bindings: []*ledgerv1.FieldBinding{
			{Field: "contact_id", FromKey: "contact"}, {Field: "allocated_artefacts.0.artefact_id", FromKey: "invoice"}},
	})
	return w
}

func (f *fleet) publish(w *ledgerv1.SageWrite) {
	f.tb.Helper()
	if _, err := bus.Publish(f.tb.Context(), f.js, bus.SageSubject(w.TenantId, w.EntityType), w, ""); err != nil {
		f.tb.Fatal(err)
	}
}

// waitTerminal waits until every run is terminal and returns the runs'
// count per status.
func (f *fleet) waitTerminal(ids []string) map[string]int {
	f.tb.Helper()
	var counts map[string]int
	devtest.Eventually(f.tb, fmt.Sprintf("%d runs to be terminal", len(ids)), func() bool {
		counts = map[string]int{}
		err := func() error {
			rows, err := f.st.Pool().Query(f.tb.Context(), `SELECT status, count(*) FROM sync_runs WHERE sync_run_id = ANY($1::uuid[]) GROUP BY status`, ids)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var s string
				var n int
				if err := rows.Scan(&s, &n); err != nil {
					return err
				}
				counts[s] = n
			}
			return rows.Err()
		}()
		if err != nil {
			f.tb.Fatal(err)
		}
		return counts[store.RunSucceeded]+counts[store.RunFailed]+counts[store.RunSkipped] == len(ids)
	}, devtest.Explain(func() string { return fmt.Sprintf("runs by status: %v", counts) }))
	return counts
}

// streamLastSeq is the sequence of the last message stored on stream.
func (f *fleet) streamLastSeq(stream string) uint64 {
	f.tb.Helper()
	str, err := f.js.Stream(f.tb.Context(), stream)
	if err != nil {
		f.tb.Fatal(err)
	}
	info, err := str.Info(f.tb.Context())
	if err != nil {
		f.tb.Fatal(err)
	}
	return info.State.LastSeq
}

func (f *fleet) deadLetters() int {
	str, err := f.js.Stream(f.tb.Context(), bus.StreamDLQ)
	if err != nil {
		f.tb.Fatal(err)
	}
	info, err := str.Info(f.tb.Context())
	if err != nil {
		f.tb.Fatal(err)
	}
	return int(info.State.Msgs)
}
