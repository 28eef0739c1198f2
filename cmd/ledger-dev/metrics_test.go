package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	magentosim "github.com/ledgersync/ledger/sim/magento"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// scraped is one service's /metrics, parsed with Prometheus's own text parser.
type scraped map[string]*dto.MetricFamily

func scrapeMetrics(ctx context.Context, baseURL string) (scraped, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: HTTP %d", baseURL, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	return scraped(fams), err
}

// sum adds the samples of name whose labels include want (a histogram's
// sample count); found says whether any matched.
func (s scraped) sum(name string, want map[string]string) (total float64, found bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total, found
}

func (s scraped) value(name string, labels ...string) float64 {
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	v, _ := s.sum(name, want)
	return v
}

// TestMetricsAgreeWithWhatHappened is the metrics acceptance test: the whole
// stack runs a shop through synced, skipped, failed (dead-lettered) and
// pending (held: the Sage binding revoked) outcomes, with a spell of Sage
// 500s; then every service's /metrics is scraped and must agree with the
// store, the Sage simulator's own request log and the DLQ stream:
//
//	events in (ingest accepted) = synced + skipped + failed + pending
//
// and Sage calls by resource, method and status, dead-letter depth by stage,
// backlog per tenant and bindings by status are each checked against their
// ground truth.
func TestMetricsAgreeWithWhatHappened(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end; skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	st, _ := startStack(t, ctx, stack.Options{})
	defer st.Close()
	const tenant = "metrics-shop"
	if err := st.Onboard(ctx, tenant, "Metrics shop"); err != nil {
		t.Fatalf("onboarding: %v", err)
	}

	// Synced, with a spell of Sage 500s (retried writes) at the start.
	if err := st.Sage.SetFaults(sagesim.Faults{ServerErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(10, 10))
	seed := st.Shop.Seed(rng, magentosim.Options{Customers: 4, Invoices: 8, GuestShare: 0.3})
	devtest.Eventually(t, "a Sage call answered 500", func() bool {
		for _, c := range st.Sage.Calls() {
			if c.Status == http.StatusInternalServerError {
				return true
			}
		}
		return false
	}, devtest.Until(ctx))
	if err := st.Sage.SetFaults(sagesim.Faults{}); err != nil {
		t.Fatal(err)
	}
	// Skipped: an invoice worth nothing. Failed: a credit memo the shop
	// cannot serve (the mapper dead-letters it).
	zero := orderInvoice(9101, "Zed", "zed@example.com")
	zero.State = magentosim.InvoiceOpen // invoice.created only: one skipped run
	for i := range zero.Lines {
		l := &zero.Lines[i]
		l.UnitPrice, l.LineSubtotal, l.LineTax, l.LineTotal, l.TaxRate = money.Number{}, money.Number{}, money.Number{}, money.Number{}, nil
	}
	zero.Subtotal, zero.TaxAmount, zero.ShippingAmount, zero.ShippingTaxAmount, zero.GrandTotal = money.Number{}, money.Number{}, money.Number{}, money.Number{}, money.Number{}
	if _, err := st.Shop.CreateInvoice(zero); err != nil {
		t.Fatal(err)
	}
	if err := st.Shop.Enqueue(magentosim.Event{Name: "creditmemo.created", IdempotencyKey: "creditmemo.created:777",
		MagentoEntityID: 777, WebsiteID: 1, StoreID: 1, MirrorProvider: magento.ProviderSage}); err != nil {
		t.Fatal(err)
	}
	expected := append(stack.ExpectSeed(seed),
		stack.Expected{EntityType: "invoice", MagentoID: 9101, Status: "skipped"},
		stack.Expected{EntityType: "creditmemo", MagentoID: 777, Status: "failed"})
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
	sum := st.WaitSettled(wctx, expected)
	wcancel()
	if !sum.OK() {
		t.Fatalf("pipeline did not settle: %+v", sum)
	}

	// Pending: the Sage binding is revoked, so two more invoices wait in
	// the writer (held, never dead-lettered).
	if err := st.Store.SetSageStatus(ctx, tenant, store.StatusTokenRevoked, ""); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := st.Shop.CreateRandomInvoice(rng, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	devtest.Eventually(t, "two runs held by the writer", func() bool {
		c, err := st.Store.RunCounts(ctx, tenant)
		return err == nil && c.Pending == 2 && st.Shop.OutboxCounts().Pending == 0
	}, devtest.Until(ctx))

	services := map[string]string{"ingest": st.IngestURL, "mapper": st.MapperURL, "sage-writer": st.WriterURL,
		"statecallback": st.StateCallbackURL, "admin": st.AdminHTTPURL}
	var problems []string
	check := func() bool {
		problems = metricProblems(ctx, st, tenant, services)
		return len(problems) == 0
	}
	// The NATS readings are cached for 5 s and the store's for 15 s: the
	// figures agree once both caches have been read after the last change.
	devtest.Eventually(t, "every service's metrics agree with the store, the Sage simulator and the DLQ stream", check,
		devtest.Within(90*time.Second), devtest.Explain(func() string { return strings.Join(problems, "\n") }))

	// What was scraped is what the services register (the catalogue the
	// dashboard and alert rules are checked against).
	catalogue := metricCatalogue(t)
	for name, url := range services {
		got, err := scrapeMetrics(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		for fam := range got {
			if strings.HasPrefix(fam, "ledger_") && !slices.Contains(catalogue[fam], name) {
				t.Errorf("%s serves %s, which the catalogue has for %v", name, fam, catalogue[fam])
			}
		}
	}
}

// metricProblems scrapes every service and lists where the metrics disagree
// with the ground truth (nothing when they all agree).
func metricProblems(ctx context.Context, st *stack.Stack, tenant string, services map[string]string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	m := map[string]scraped{}
	for name, url := range services {
		s, err := scrapeMetrics(ctx, url)
		if err != nil {
			return []string{err.Error()}
		}
		m[name] = s
	}
	counts, err := st.Store.RunCounts(ctx, tenant)
	if err != nil {
		return []string{err.Error()}
	}

	// Events in = synced + skipped + failed + pending.
	in := m["ingest"].value("ledger_ingest_webhooks_total", "outcome", "accepted")
	synced := m["sage-writer"].value("ledger_sage_writer_writes_total", "outcome", "succeeded")
	skipped := m["mapper"].value("ledger_mapper_events_total", "outcome", "skipped")
	failed := m["mapper"].value("ledger_mapper_events_total", "outcome", "failed") +
		m["sage-writer"].value("ledger_sage_writer_writes_total", "outcome", "failed")
	pending := m["admin"].value("ledger_admin_unfinished_runs")
	if in != synced+skipped+failed+pending {
		bad("events in %v ≠ synced %v + skipped %v + failed %v + pending %v", in, synced, skipped, failed, pending)
	}
	total := counts.Pending + counts.Succeeded + counts.Skipped + counts.Failed
	for _, c := range []struct {
		what      string
		got, want float64
	}{
		{"events in (runs in the store)", in, float64(total)},
		{"synced", synced, float64(counts.Succeeded)}, {"skipped", skipped, float64(counts.Skipped)},
		{"failed", failed, float64(counts.Failed)}, {"pending", pending, float64(counts.Pending)},
		{"skipped (the zero-value invoice)", skipped, 1}, {"failed (the credit memo)", failed, 1}, {"pending (held)", pending, 2},
	} {
		if c.got != c.want {
			bad("%s: the metrics say %v, the store %v", c.what, c.got, c.want)
		}
	}
	if m["sage-writer"].value("ledger_sage_writer_writes_total", "outcome", "retry") < 1 {
		bad("no write retried after the Sage 500s")
	}
	if m["sage-writer"].value("ledger_sage_writer_writes_total", "outcome", "paused") < 1 {
		bad("no write paused on the revoked binding")
	}

	// Sage calls, by resource, method and status: the writer's and admin's
	// count is the simulator's own (the browser's authorize page aside).
	type call struct{ resource, method, status string }
	want := map[call]float64{}
	for _, c := range st.Sage.Calls() {
		method, path, _ := strings.Cut(c.Route, " ")
		if path == "/oauth2/auth/central" || c.Route == "UNMATCHED" {
			continue
		}
		want[call{telemetry.SageResourceLabel(path), method, fmt.Sprint(c.Status)}] += float64(c.Count)
	}
	got := map[call]float64{}
	for _, svc := range []string{"sage-writer", "admin"} {
		for _, s := range m[svc]["ledger_sage_calls_total"].GetMetric() {
			l := map[string]string{}
			for _, p := range s.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[call{l["resource"], l["method"], l["status"]}] += s.GetCounter().GetValue()
		}
	}
	for k, n := range want {
		if got[k] != n {
			bad("Sage %s %s → %s: the metrics count %v, the simulator %v", k.method, k.resource, k.status, got[k], n)
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok && n != 0 {
			bad("Sage %s %s → %s: the metrics count %v, the simulator none", k.method, k.resource, k.status, n)
		}
	}
	answered500 := false
	for k := range got {
		answered500 = answered500 || k.status == "500"
	}
	if want[call{"sales_invoices", "POST", "201"}] == 0 || !answered500 {
		bad("the run made no successful invoice POST or met no 500 (want both): %v", want)
	}

	// Dead letters: the depth per stage is the DLQ stream's, and (nothing
	// replayed) the number the stage published.
	dlq, err := st.JS.Stream(ctx, bus.StreamDLQ)
	if err != nil {
		return []string{err.Error()}
	}
	for _, stage := range []string{"mapper", "sage-writer", "statecallback"} {
		info, err := dlq.Info(ctx, jetstream.WithSubjectFilter("ledger.dlq."+stage+".>"))
		if err != nil {
			return []string{err.Error()}
		}
		var inStream float64
		for _, n := range info.State.Subjects {
			inStream += float64(n)
		}
		depth, found := m[stage].sum("ledger_dlq_messages", map[string]string{"stage": stage})
		published := m[stage].value("ledger_dlq_published_total", "stage", stage)
		if !found || depth != inStream || published != inStream {
			bad("%s dead letters: depth %v (reported %v), published %v, the DLQ stream holds %v", stage, depth, found, published, inStream)
		}
	}
	if n := m["mapper"].value("ledger_dlq_published_total", "stage", "mapper", "code", "magento_entity_not_found"); n != 1 {
		bad("mapper dead letters with code magento_entity_not_found: %v, want 1", n)
	}

	// Backlog: the held tenant's two writes, from the writer's consumer and
	// from the store; the mapper has nothing left.
	if n := m["sage-writer"].value("ledger_consumer_tenant_backlog_messages", "stage", "sage-writer", "tenant", tenant); n != 2 {
		bad("writer backlog of %s: %v, want 2", tenant, n)
	}
	if n := m["admin"].value("ledger_admin_tenant_backlog_runs", "tenant", tenant); n != 2 {
		bad("admin backlog of %s: %v, want 2", tenant, n)
	}
	if n, found := m["mapper"].sum("ledger_consumer_pending_messages", map[string]string{"stage": "mapper", "stream": bus.StreamOutbox}); !found || n != 0 {
		bad("mapper pending: %v (reported %v), want 0", n, found)
	}
	if n := m["admin"].value("ledger_admin_bindings", "side", "sage", "status", store.StatusTokenRevoked); n != 1 {
		bad("Sage bindings token_revoked: %v, want 1", n)
	}
	if n := m["admin"].value("ledger_admin_tenant_last_webhook_timestamp_seconds", "tenant", tenant); n < float64(time.Now().Add(-10*time.Minute).Unix()) {
		bad("last webhook of %s at %v: not within the run", tenant, n)
	}

	// Every stage timed its work; statecallback mirrored results.
	for stage, svc := range map[string]string{"ingest": "ingest", "mapper": "mapper", "sage-writer": "sage-writer", "statecallback": "statecallback"} {
		if m[svc].value("ledger_stage_duration_seconds", "stage", stage) == 0 {
			bad("no ledger_stage_duration_seconds for %s", stage)
		}
	}
	if m["mapper"].value("ledger_consumer_deliveries_total", "stage", "mapper", "outcome", "ack") < in-failed {
		bad("mapper acked fewer deliveries than events it did not dead-letter")
	}
	if m["statecallback"].value("ledger_statecallback_calls_total", "result", "ok") == 0 ||
		m["statecallback"].value("ledger_statecallback_results_total", "outcome", "delivered") == 0 {
		bad("statecallback delivered nothing")
	}
	return problems
}
