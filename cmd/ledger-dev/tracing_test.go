package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ledgersync/ledger/cmd/ledger-dev/stack"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	magentosim "github.com/ledgersync/ledger/sim/magento"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// spans is what an in-memory exporter holds, with lookups by name, attribute
// and trace.
type spans []tracetest.SpanStub

func attrOf(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

func (ss spans) where(keep func(tracetest.SpanStub) bool) spans {
	var out spans
	for _, s := range ss {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

func (ss spans) named(name string) spans {
	return ss.where(func(s tracetest.SpanStub) bool { return s.Name == name })
}

func (ss spans) inTrace(id trace.TraceID) spans {
	return ss.where(func(s tracetest.SpanStub) bool { return s.SpanContext.TraceID() == id })
}

func (ss spans) with(key, value string) spans {
	return ss.where(func(s tracetest.SpanStub) bool { return attrOf(s, key) == value })
}

// childrenOf are the spans whose parent is p.
func (ss spans) childrenOf(p tracetest.SpanStub) spans {
	return ss.where(func(s tracetest.SpanStub) bool { return s.Parent.SpanID() == p.SpanContext.SpanID() })
}

// tree prints a trace for failure messages.
func (ss spans) tree() string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "  %s %q kind=%v parent=%s status=%v delivery=%s outcome=%s http=%s links=%d\n", s.SpanContext.SpanID(), s.Name,
			s.SpanKind, s.Parent.SpanID(), s.Status.Code, attrOf(s, "messaging.nats.message.delivery_count"), attrOf(s, "ledger.outcome"),
			attrOf(s, "http.response.status_code"), len(s.Links))
	}
	return b.String()
}

// TestOneTraceFromWebhookToSyncState is the tracing acceptance test: with an
// in-memory span exporter installed before the stack starts, one invoice
// flows webhook → mapper's canonical fetch → Sage → sync-state callback in
// ONE trace, including a Sage call that fails once (the simulator answers
// 500) and the writer's redelivery that succeeds; then an operator's
// RetryRuns starts a new trace that links to the original. Log lines and the
// run record carry the trace id.
func TestOneTraceFromWebhookToSyncState(t *testing.T) {
	if testing.Short() {
		t.Skip("the traced pipeline run is skipped in -short mode")
	}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)) // exports on End: no goroutine, nothing lost
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	defer func() {
		otel.SetTracerProvider(prev)
		_ = tp.Shutdown(context.Background())
	}()
	all := func() spans { return spans(exp.GetSpans()) }

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	logPath := filepath.Join(t.TempDir(), "stack.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer dumpOnFailure(t, "stack log", logPath)
	st, err := stack.Start(ctx, stack.Options{StateDir: t.TempDir(), Log: slog.New(slog.NewJSONHandler(logFile, nil))})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	defer st.Close()
	const tenant = "traced-shop"
	if err := st.Onboard(ctx, tenant, "Traced shop"); err != nil {
		t.Fatalf("onboarding: %v", err)
	}

	// Sage fails every API call until the writer has seen one 500, then
	// recovers: the write is retried by a redelivery.
	if err := st.Sage.SetFaults(sagesim.Faults{ServerErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	const invoiceID = int64(7001)
	inv := orderInvoice(invoiceID, "Tia", "tia@example.com")
	inv.State = magentosim.InvoiceOpen // invoice.created only
	if _, err := st.Shop.CreateInvoice(inv); err != nil {
		t.Fatal(err)
	}
	failedSageCall := func() bool {
		return len(all().where(func(s tracetest.SpanStub) bool {
			return strings.HasPrefix(s.Name, "sage ") && attrOf(s, "http.response.status_code") == "500"
		})) > 0
	}
	devtest.Eventually(t, "a Sage call answered 500", failedSageCall, devtest.Until(ctx))
	if err := st.Sage.SetFaults(sagesim.Faults{}); err != nil {
		t.Fatal(err)
	}
	want := []stack.Expected{{EntityType: "invoice", MagentoID: invoiceID, Status: "synced"}}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	sum := st.WaitSettled(wctx, want)
	wcancel()
	if !sum.OK() {
		t.Fatalf("pipeline did not settle: %+v", sum)
	}

	// The run records the trace of its webhook.
	run, err := st.Store.LatestRun(ctx, tenant, "invoice", invoiceID)
	if err != nil {
		t.Fatal(err)
	}
	traceID, err := trace.TraceIDFromHex(run.TraceID)
	if err != nil {
		t.Fatalf("run %s has trace id %q: %v", run.ID, run.TraceID, err)
	}
	// A consumer's span ends after its handler, once the delivery is
	// settled: the shop can have its sync-state row before the writer's or
	// statecallback's span has ended. Wait for every span the test reads.
	devtest.Eventually(t, "the sync-state call's span and the spans of the deliveries that ended in an ack", func() bool {
		tr := all().inTrace(traceID)
		return len(tr.named("magento POST /rest/V1/byte8/sync-state").with("http.response.status_code", "200")) > 0 &&
			len(tr.named("statecallback process").with("ledger.outcome", "ack")) > 0 &&
			len(tr.named("sage-writer process").with("ledger.outcome", "ack")) > 0 &&
			len(tr.named("mapper process").with("ledger.outcome", "ack")) > 0
	}, devtest.Until(ctx))
	tr := all().inTrace(traceID)
	explain := "trace " + run.TraceID + ":\n" + tr.tree()
	one := func(ss spans, what string) tracetest.SpanStub {
		t.Helper()
		if len(ss) != 1 {
			t.Fatalf("%d spans for %s, want 1\n%s", len(ss), what, explain)
		}
		return ss[0]
	}

	// webhook: ingest's server span, the root, with the run's attributes.
	webhook := one(tr.named("POST /webhooks/magento/{tenant}/{event}"), "the webhook")
	if webhook.SpanKind != trace.SpanKindServer || webhook.Parent.IsValid() || webhook.SpanContext.SpanID().String() != run.TraceSpanID ||
		attrOf(webhook, "ledger.tenant") != tenant || attrOf(webhook, "ledger.event") != "invoice.created" ||
		attrOf(webhook, "ledger.run_id") != run.ID || attrOf(webhook, "http.response.status_code") != "202" ||
		attrOf(webhook, "ledger.outcome") != "accepted" {
		t.Fatalf("webhook span %+v\n%s", webhook.Attributes, explain)
	}
	// mapper: one delivery, a child of the OUTBOX publish, fetching the
	// invoice from the shop.
	publishOutbox := one(tr.named("publish OUTBOX"), "the OUTBOX publish")
	if publishOutbox.Parent.SpanID() != webhook.SpanContext.SpanID() || publishOutbox.SpanKind != trace.SpanKindProducer {
		t.Fatalf("OUTBOX publish is not the webhook's child\n%s", explain)
	}
	mapper := one(tr.named("mapper process"), "the mapper")
	if mapper.Parent.SpanID() != publishOutbox.SpanContext.SpanID() || mapper.SpanKind != trace.SpanKindConsumer ||
		len(mapper.Links) != 1 || mapper.Links[0].SpanContext.SpanID() != publishOutbox.SpanContext.SpanID() ||
		attrOf(mapper, "ledger.run_id") != run.ID || attrOf(mapper, "ledger.magento_entity_id") != fmt.Sprint(invoiceID) ||
		attrOf(mapper, "messaging.nats.stream") != "OUTBOX" || attrOf(mapper, "ledger.outcome") != "ack" {
		t.Fatalf("mapper span %+v\n%s", mapper.Attributes, explain)
	}
	fetch := one(tr.named("magento GET /rest/V1/byte8/invoice/{id}").childrenOf(mapper), "the canonical fetch")
	if fetch.SpanKind != trace.SpanKindClient || attrOf(fetch, "http.response.status_code") != "200" {
		t.Fatalf("canonical fetch span %+v\n%s", fetch.Attributes, explain)
	}
	// sage-writer: a first delivery that failed on a Sage 500, and a
	// redelivery, a sibling in the same trace, that wrote the invoice.
	writes := tr.named("sage-writer process")
	failed := writes.with("messaging.nats.message.delivery_count", "1")
	if len(writes) < 2 || len(failed) != 1 {
		t.Fatalf("%d writer deliveries (%d first): want a failed first delivery and a retry\n%s", len(writes), len(failed), explain)
	}
	first := failed[0]
	if first.Status.Code != codes.Error || attrOf(first, "ledger.outcome") != "retry" || attrOf(first, "ledger.error.class") == "" ||
		attrOf(first, "ledger.run_id") != run.ID {
		t.Fatalf("failed delivery: status %v %+v\n%s", first.Status, first.Attributes, explain)
	}
	if len(tr.childrenOf(first).with("http.response.status_code", "500")) == 0 {
		t.Fatalf("the failed delivery has no Sage call answered 500\n%s", explain)
	}
	last := writes.with("ledger.outcome", "ack")
	if len(last) != 1 {
		t.Fatalf("%d successful writer deliveries\n%s", len(last), explain)
	}
	retry := last[0]
	if retry.Parent.SpanID() != first.Parent.SpanID() || retry.Status.Code == codes.Error {
		t.Fatalf("the retry is not a sibling of the failed delivery\n%s", explain)
	}
	created := tr.childrenOf(retry).named("sage POST /v3.1/sales_invoices")
	if len(created) != 1 || attrOf(created[0], "ledger.sage.resource") != "sales_invoices" ||
		!strings.HasPrefix(attrOf(created[0], "http.response.status_code"), "2") || created[0].SpanKind != trace.SpanKindClient {
		t.Fatalf("the retry did not create the invoice in Sage: %+v\n%s", created, explain)
	}
	// statecallback: the result's delivery calls the shop's sync-state route.
	callback := one(tr.named("statecallback process").with("ledger.outcome", "ack"), "the sync-state delivery")
	if attrOf(callback, "ledger.run_id") != run.ID || attrOf(callback, "messaging.nats.stream") != "RESULTS" {
		t.Fatalf("statecallback span %+v\n%s", callback.Attributes, explain)
	}
	one(tr.childrenOf(callback).named("magento POST /rest/V1/byte8/sync-state"), "the sync-state call")
	// No span carries a secret.
	for _, s := range all() {
		for _, kv := range s.Attributes {
			if v := kv.Value.Emit(); strings.Contains(strings.ToLower(v), "bearer") || strings.Contains(v, st.AdminToken) {
				t.Fatalf("span %q attribute %s leaks a credential", s.Name, kv.Key)
			}
		}
	}

	t.Logf("trace of invoice %d:\n%s", invoiceID, explain)

	// The logs of the run carry its trace id.
	if !logged(t, logPath, "mapper: SageWrite published", run.TraceID) || !logged(t, logPath, "ingest: webhook accepted", run.TraceID) {
		t.Fatalf("no log line of the run with trace_id %s", run.TraceID)
	}

	// An operator's retry: a new trace (the RPC's), linked to the original.
	admin, closeAdmin, err := st.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer closeAdmin()
	got, err := admin.GetRun(ctx, &ledgerv1.GetRunRequest{SyncRunId: run.ID})
	if err != nil || got.GetRun().GetTraceId() != run.TraceID {
		t.Fatalf("GetRun: %v %v", got, err)
	}
	res, err := admin.RetryRuns(ctx, &ledgerv1.RetryRunsRequest{SyncRunIds: []string{run.ID}})
	if err != nil || res.GetRuns()[0].GetError() != "" {
		t.Fatalf("RetryRuns: %v %v", res, err)
	}
	var retried tracetest.SpanStub
	devtest.Eventually(t, "the retried run's sync-state call in a new trace", func() bool {
		rs := all().named("admin retry run").with("ledger.run_id", run.ID)
		if len(rs) != 1 {
			return false
		}
		retried = rs[0]
		return len(all().inTrace(retried.SpanContext.TraceID()).named("magento POST /rest/V1/byte8/sync-state")) > 0
	}, devtest.Until(ctx))
	if r, err := st.Store.Run(ctx, run.ID); err != nil || r.Status != store.RunSucceeded {
		t.Fatalf("retried run: %+v %v", r, err)
	}
	newTrace := all().inTrace(retried.SpanContext.TraceID())
	if retried.SpanContext.TraceID() == traceID || len(retried.Links) != 1 ||
		retried.Links[0].SpanContext.TraceID() != traceID || retried.Links[0].SpanContext.SpanID() != webhook.SpanContext.SpanID() ||
		!slices.ContainsFunc(retried.Links[0].Attributes, func(kv attribute.KeyValue) bool { return kv.Key == "ledger.link.reason" && kv.Value.Emit() == "retry" }) {
		t.Fatalf("retry span: trace %s links %+v\nnew trace:\n%s", retried.SpanContext.TraceID(), retried.Links, newTrace.tree())
	}
	rpc := one(newTrace.named("ledger.v1.AdminService/RetryRuns"), "the RetryRuns call")
	if retried.Parent.SpanID() != rpc.SpanContext.SpanID() || rpc.SpanKind != trace.SpanKindServer || rpc.Parent.IsValid() {
		t.Fatalf("the retry span is not a child of the operator's call\n%s", newTrace.tree())
	}
	if len(newTrace.named("mapper process").with("ledger.run_id", run.ID)) != 1 {
		t.Fatalf("the retried run is not mapped in the new trace\n%s", newTrace.tree())
	}
	if n := len(all().inTrace(traceID).named("mapper process")); n != 1 {
		t.Fatalf("the retry went into the finished original trace (%d mapper spans there)", n)
	}
	t.Logf("trace of the operator's retry:\n%s", newTrace.tree())
}

// logged reports whether the JSON log at path has a line with message msg
// and trace_id traceID.
func logged(t *testing.T, path, msg, traceID string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg     string `json:"msg"`
			TraceID string `json:"trace_id"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == msg && line.TraceID == traceID {
			return true
		}
	}
	return false
}
