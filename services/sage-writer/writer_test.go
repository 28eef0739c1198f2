package sagewriter_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
	sagewriter "github.com/ledgersync/ledger/services/sage-writer"
	sagesim "github.com/ledgersync/ledger/sim/sage"
)

// drained reports whether the writer's consumer has settled every message.
func (s *stack) drained() bool {
	c, err := s.js.Consumer(s.t.Context(), bus.StreamSage, sagewriter.ConsumerName(tenantID))
	if err != nil {
		return false
	}
	info, err := c.Info(s.t.Context())
	return err == nil && info.NumAckPending == 0 && info.NumPending == 0
}

func TestWriteCreatesEachDocumentOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.startWriter(s.config())

	run := s.newRun("invoice.created", 42)
	w := s.invoiceWrite(run, 42)
	s.publish(w)
	r := s.waitRun(run)
	if r.Status != store.RunSucceeded {
		t.Fatalf("run %s: %s %s %s", r.Status, r.ErrorClass, r.ErrorCode, r.LastError)
	}
	contacts, invoices := s.sim.Contacts(s.business), s.sim.Invoices(s.business)
	if len(contacts) != 1 || len(invoices) != 1 {
		t.Fatalf("Sage holds %d contacts and %d invoices, want 1 and 1", len(contacts), len(invoices))
	}
	if contacts[0].Reference != "M42" || invoices[0].Contact.ID != contacts[0].ID {
		t.Fatalf("contact %+v, invoice's contact %+v", contacts[0].Reference, invoices[0].Contact)
	}
	if r.SageID != invoices[0].ID || strings.Join(r.AppliedQuirks, ",") != "s07_line_tax" {
		t.Fatalf("run sage id %q (invoice %q), quirks %v", r.SageID, invoices[0].ID, r.AppliedQuirks)
	}
	ctx := t.Context()
	if x, err := s.st.Xref(ctx, tenantID, "contact", "M42", "GBP"); err != nil || x.SageID != contacts[0].ID || x.Reference != "M42" {
		t.Fatalf("contact xref %+v, %v", x, err)
	}
	if x, err := s.st.Xref(ctx, tenantID, "invoice", "42", "GBP"); err != nil || x.SageID != invoices[0].ID {
		t.Fatalf("invoice xref %+v, %v", x, err)
	}
	attempts := s.attempts(run)
	if len(attempts) != 2 {
		t.Fatalf("attempts %+v, want the two POSTs", attempts)
	}
	for _, a := range attempts {
		if a.Stage != sagewriter.Stage || a.Method != http.MethodPost || a.Outcome != "ok" || a.HTTPStatus != 201 || a.RequestID == "" {
			t.Errorf("attempt %+v", a)
		}
	}
	devtest.Eventually(t, "the SyncResult is on RESULTS", func() bool {
		for _, res := range s.results() {
			if res.SyncRunId == run && res.Status == ledgerv1.SyncStatus_SYNC_STATUS_SYNCED && res.ProviderEntityId == invoices[0].ID {
				return true
			}
		}
		return false
	})

	// The same message again (a redelivery after success): nothing is sent.
	s.publish(w)
	devtest.Eventually(t, "the repeat is settled", s.drained)
	// The same write for a new run (Magento re-sent the event): entity_xref
	// knows both documents, so no POST either.
	run2 := s.newRun("invoice.created", 42)
	s.publish(s.invoiceWrite(run2, 42))
	if r2 := s.waitRun(run2); r2.Status != store.RunSucceeded || r2.SageID != invoices[0].ID {
		t.Fatalf("second run %+v", r2)
	}
	if n, m := s.posts("contacts"), s.posts("sales_invoices"); n != 1 || m != 1 {
		t.Fatalf("POSTs: %d contacts, %d invoices; want 1 and 1", n, m)
	}
	if len(s.sim.Contacts(s.business)) != 1 || len(s.sim.Invoices(s.business)) != 1 {
		t.Fatal("a duplicate reached Sage")
	}
	if len(s.deadLetters()) != 0 {
		t.Fatal("dead letters after success")
	}
}

func TestExistingXrefSkipsThePost(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	doc, _, err := s.api().Create(ctx, "contacts", "contact",
		mustJSON(map[string]any{"name": "Linked by hand", "reference": "LINKED", "contact_type_ids": []string{"CUSTOMER"}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.st.PutXref(ctx, store.Xref{TenantID: tenantID, Kind: "contact", MagentoKey: "M5", Currency: "GBP",
		SageID: doc.ID, Reference: "LINKED"}); err != nil {
		t.Fatal(err)
	}
	s.startWriter(s.config())
	run := s.newRun("invoice.created", 5)
	s.publish(s.invoiceWrite(run, 5))
	if r := s.waitRun(run); r.Status != store.RunSucceeded {
		t.Fatalf("run %+v", r)
	}
	if n := s.posts("contacts"); n != 1 {
		t.Fatalf("%d contact POSTs, want only the set-up one", n)
	}
	inv := s.sim.Invoices(s.business)
	if len(inv) != 1 || inv[0].Contact.ID != doc.ID {
		t.Fatalf("invoices %+v, want one on contact %s", inv, doc.ID)
	}
}

func TestValidationFailureIsDeadLettered(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.startWriter(s.config())
	run := s.newRun("invoice.created", 7)
	w := s.invoiceWrite(run, 7)
	var body map[string]any
	_ = json.Unmarshal(w.Operations[1].Body, &body)
	body["invoice_lines"].([]any)[0].(map[string]any)["ledger_account_id"] = "no-such-account"
	w.Operations[1].Body = mustJSON(body)
	s.publish(w)

	r := s.waitRun(run)
	if r.Status != store.RunFailed || r.ErrorClass != sagewriter.ClassValidation || r.ErrorCode != "record_not_found" ||
		!strings.HasPrefix(r.LastError, "line_items.ledger_account_id: ") {
		t.Fatalf("run %s %s %s %q", r.Status, r.ErrorClass, r.ErrorCode, r.LastError)
	}
	var dls []*ledgerv1.DeadLetter
	devtest.Eventually(t, "the write is on the DLQ", func() bool { dls = s.deadLetters(); return len(dls) == 1 })
	dl := dls[0]
	if dl.Stage != sagewriter.Stage || dl.TenantId != tenantID || dl.SyncRunId != run || dl.ErrorClass != "validation" ||
		dl.ErrorCode != "record_not_found" || dl.Source != "line_items.ledger_account_id" || dl.HttpStatus != 422 ||
		dl.OriginalSubject != bus.SageSubject(tenantID, "invoice") {
		t.Fatalf("dead letter %+v", dl)
	}
	var orig ledgerv1.SageWrite
	if err := proto.Unmarshal(dl.Original, &orig); err != nil || orig.SyncRunId != run {
		t.Fatalf("original %v %v", &orig, err)
	}
	attempts := s.attempts(run)
	last := attempts[len(attempts)-1]
	if last.Outcome != "failed" || last.HTTPStatus != 422 || last.ErrorSource != "line_items.ledger_account_id" ||
		!strings.Contains(last.Envelope, "line_items.description") || last.RequestID == "" {
		t.Fatalf("failed attempt %+v", last)
	}
	devtest.Eventually(t, "a failed SyncResult", func() bool {
		for _, res := range s.results() {
			if res.SyncRunId == run && res.Status == ledgerv1.SyncStatus_SYNC_STATUS_FAILED && res.ErrorCode == "record_not_found" {
				return true
			}
		}
		return false
	})
	if n := s.posts("sales_invoices"); n != 1 {
		t.Fatalf("%d invoice POSTs; a validation failure must not be retried", n)
	}
}

func TestInvalidWriteIsDeadLetteredWithoutACall(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.startWriter(s.config())
	run := s.newRun("invoice.created", 8)
	w := s.invoiceWrite(run, 8)
	// The invoice comes first and binds the contact, which has no id yet.
	w.Operations[0], w.Operations[1] = w.Operations[1], w.Operations[0]
	s.publish(w)

	r := s.waitRun(run)
	if r.Status != store.RunFailed || r.ErrorClass != sagewriter.ClassSerde || r.ErrorCode != sagewriter.CodeInvalidWrite ||
		!strings.Contains(r.LastError, `binds "contact_id" to "contact", which is not an earlier operation of the write`) {
		t.Fatalf("run %s %s %s %q", r.Status, r.ErrorClass, r.ErrorCode, r.LastError)
	}
	devtest.Eventually(t, "the write is on the DLQ", func() bool { return len(s.deadLetters()) == 1 })
	if n := s.posts("sales_invoices") + s.posts("contacts"); n != 0 {
		t.Fatalf("%d POSTs for a write that can never be executed", n)
	}
}

func TestSoftDeletedContactReference(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	doc, _, err := s.api().Create(ctx, "contacts", "contact",
		mustJSON(map[string]any{"name": "Deleted", "reference": "M9", "contact_type_ids": []string{"CUSTOMER"}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.api().Do(ctx, http.MethodDelete, "/contacts/"+doc.ID, nil); err != nil {
		t.Fatal(err)
	}
	s.startWriter(s.config())
	run := s.newRun("invoice.created", 9)
	s.publish(s.invoiceWrite(run, 9))
	r := s.waitRun(run)
	if r.Status != store.RunFailed || r.ErrorCode != sagewriter.CodeContactReferenceReserved ||
		!strings.Contains(r.LastError, "reserved reference 'M9'") ||
		!strings.Contains(r.LastError, "ledgerctl xref set --tenant acme --kind contact --key M9 --currency GBP --sage-id NEW_ID") {
		t.Fatalf("run %s %s %q", r.Status, r.ErrorCode, r.LastError)
	}
	devtest.Eventually(t, "the write is on the DLQ", func() bool {
		dls := s.deadLetters()
		return len(dls) == 1 && dls[0].ErrorCode == sagewriter.CodeContactReferenceReserved
	})
}

func TestCommitThenDropIsResolvedByLookup(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	if err := s.sim.SetFaults(sagesim.Faults{CommitThenDropRate: 1}); err != nil {
		t.Fatal(err)
	}
	s.startWriter(s.config())
	run := s.newRun("invoice.created", 11)
	s.publish(s.invoiceWrite(run, 11))
	if r := s.waitRun(run); r.Status != store.RunSucceeded {
		t.Fatalf("run %+v", r)
	}
	if c, i := s.sim.Contacts(s.business), s.sim.Invoices(s.business); len(c) != 1 || len(i) != 1 {
		t.Fatalf("%d contacts, %d invoices; want exactly one of each", len(c), len(i))
	}
	if n, m := s.posts("contacts"), s.posts("sales_invoices"); n != 1 || m != 1 {
		t.Fatalf("POSTs %d and %d: the lookup must stop a second create", n, m)
	}
	resolved := 0
	for _, a := range s.attempts(run) {
		if a.Outcome == "resolved" {
			resolved++
		}
	}
	if resolved != 2 {
		t.Fatalf("attempts %+v, want two resolved", s.attempts(run))
	}
}

func TestServerErrorsAreRetried(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	if err := s.sim.SetFaults(sagesim.Faults{ServerErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	s.startWriter(s.config())
	run := s.newRun("invoice.created", 13)
	s.publish(s.invoiceWrite(run, 13))
	// The attempt is recorded before the run's error is noted: wait for both.
	var r store.Run
	devtest.Eventually(t, "a 500 is recorded as a retry and the run's error noted", func() bool {
		for _, a := range s.attempts(run) {
			if a.HTTPStatus == 500 && a.Outcome == "retry" {
				r, _ = s.st.Run(t.Context(), run)
				return r.Terminal() || r.ErrorClass != ""
			}
		}
		return false
	})
	if r.Terminal() || r.ErrorClass != sagewriter.ClassProvider {
		t.Fatalf("run after a 500: %+v", r)
	}
	if err := s.sim.SetFaults(sagesim.Faults{}); err != nil {
		t.Fatal(err)
	}
	r = s.waitRun(run)
	if r.Status != store.RunSucceeded || r.Attempts < 2 {
		t.Fatalf("run %+v", r)
	}
	if c, i := s.sim.Contacts(s.business), s.sim.Invoices(s.business); len(c) != 1 || len(i) != 1 {
		t.Fatalf("%d contacts, %d invoices", len(c), len(i))
	}
}

func TestExpiredAccessTokenIsRefreshed(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	before, err := s.st.Tokens(ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	// Stored as expiring within the minute: refreshed before the first call.
	soon := before
	soon.AccessExpiresAt = time.Now().Add(10 * time.Second)
	if err := s.st.SaveTokens(ctx, tenantID, soon); err != nil {
		t.Fatal(err)
	}
	base := s.tokenRequests()
	s.startWriter(s.config())
	run := s.newRun("invoice.created", 21)
	s.publish(s.invoiceWrite(run, 21))
	if r := s.waitRun(run); r.Status != store.RunSucceeded {
		t.Fatalf("run %+v", r)
	}
	after, err := s.st.Tokens(ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.tokenRequests() - base; n != 1 {
		t.Fatalf("%d token requests, want one refresh", n)
	}
	if after.Refresh == before.Refresh || after.Access == before.Access || after.Version <= soon.Version ||
		time.Until(after.AccessExpiresAt) < 4*time.Minute {
		t.Fatal("the rotated tokens were not committed")
	}

	// Sage expires the token while the store still thinks it valid: the 401
	// forces one refresh and the call is retried once.
	s.sim.ExpireAccessTokens()
	run2 := s.newRun("invoice.created", 22)
	s.publish(s.invoiceWrite(run2, 22))
	if r := s.waitRun(run2); r.Status != store.RunSucceeded {
		t.Fatalf("run after 401 %+v", r)
	}
	if n := s.tokenRequests() - base; n != 2 {
		t.Fatalf("%d token requests, want two refreshes in all", n)
	}
	saw401 := false
	for _, a := range s.attempts(run2) {
		saw401 = saw401 || (a.HTTPStatus == 401 && a.Outcome == "retry")
	}
	if !saw401 {
		t.Fatalf("attempts %+v lack the 401", s.attempts(run2))
	}
}

func TestRevokedRefreshTokenPausesTheWrite(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	tok, err := s.st.Tokens(ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	tok.AccessExpiresAt = time.Now()
	if err := s.st.SaveTokens(ctx, tenantID, tok); err != nil {
		t.Fatal(err)
	}
	s.sim.RevokeRefreshTokens()
	s.startWriter(s.config())
	run := s.newRun("invoice.created", 31)
	s.publish(s.invoiceWrite(run, 31))

	devtest.Eventually(t, "the binding is token_revoked", func() bool {
		tn, err := s.st.Tenant(ctx, tenantID)
		return err == nil && tn.Binding.Status == store.StatusTokenRevoked
	})
	// Paused, not failed: delivered again (PauseDelay is 1 s here) and still
	// waiting, nothing on the DLQ.
	devtest.Eventually(t, "the paused write is delivered again", func() bool {
		r, err := s.st.Run(ctx, run)
		return err == nil && r.Attempts >= 2
	})
	r, _ := s.st.Run(ctx, run)
	if r.Terminal() || r.ErrorClass != sagewriter.ClassAuth {
		t.Fatalf("paused run %+v", r)
	}
	if len(s.deadLetters()) != 0 || s.drained() {
		t.Fatal("a paused write must stay pending, not dead-lettered")
	}
	if len(s.sim.Contacts(s.business)) != 0 {
		t.Fatal("wrote with revoked tokens")
	}

	s.authorise() // the operator reconnects Sage: new tokens, binding active
	if r := s.waitRun(run); r.Status != store.RunSucceeded {
		t.Fatalf("run after re-authorising %+v", r)
	}
	if len(s.sim.Invoices(s.business)) != 1 {
		t.Fatal("the invoice was not written after re-authorising")
	}
}

func TestConcurrentRefreshCallsSageOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	tok, err := s.st.Tokens(ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	tok.AccessExpiresAt = time.Now().Add(-time.Minute)
	if err := s.st.SaveTokens(ctx, tenantID, tok); err != nil {
		t.Fatal(err)
	}
	base := s.tokenRequests()
	// Two sources, as two workers (or two replicas) would hold.
	sources := []*sagewriter.TokenSource{
		sagewriter.NewTokenSource(s.st, s.oauth, tenantID),
		sagewriter.NewTokenSource(s.st, s.oauth, tenantID),
	}
	got := make([]string, 2)
	errs := make([]error, 2)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, src := range sources {
		wg.Go(func() {
			<-start
			got[i], errs[i] = src.AccessToken(ctx)
		})
	}
	close(start)
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if got[0] != got[1] || got[0] == tok.Access {
		t.Fatal("the two callers did not get the same fresh token")
	}
	if n := s.tokenRequests() - base; n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
	if _, err := s.api().LeadBusiness(ctx); err != nil {
		t.Fatalf("the refreshed token does not work: %v", err)
	}
}

func TestLastDeliveryFailsTheRun(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	if err := s.sim.SetFaults(sagesim.Faults{ServerErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	cfg := s.config()
	cfg.MaxDeliver = 2
	s.startWriter(cfg)
	run := s.newRun("invoice.created", 17)
	s.publish(s.invoiceWrite(run, 17))
	r := s.waitRun(run)
	if r.Status != store.RunFailed || r.ErrorClass != sagewriter.ClassProvider || r.ErrorCode != sagewriter.CodeServerError || r.Attempts != 2 {
		t.Fatalf("run %+v", r)
	}
	devtest.Eventually(t, "the write is dead-lettered and acked", func() bool {
		dls := s.deadLetters()
		return len(dls) == 1 && dls[0].Attempts == 2 && dls[0].HttpStatus == 500 && s.drained()
	})
}

// businessSwap makes Sage answer POSTs as if for another business.
type businessSwap struct{ base http.RoundTripper }

func (b businessSwap) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := b.base.RoundTrip(r)
	if err == nil && r.Method == http.MethodPost && resp.Header.Get("X-Business") != "" {
		resp.Header.Set("X-Business", "another-business")
	}
	return resp, err
}

func TestLeadBusinessChangePausesTheWrite(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	cfg := s.config()
	cfg.HTTPClient = &http.Client{Transport: businessSwap{base: s.srv.Client().Transport}}
	svc := s.startWriter(cfg)
	run := s.newRun("invoice.created", 19)
	s.publish(s.invoiceWrite(run, 19))
	devtest.Eventually(t, "the write is paused with class auth", func() bool {
		r, err := s.st.Run(t.Context(), run)
		return err == nil && r.Attempts >= 2 && r.ErrorClass == sagewriter.ClassAuth
	})
	if r, _ := s.st.Run(t.Context(), run); r.Terminal() || !strings.Contains(r.LastError, "lead business changed") {
		t.Fatalf("run %+v", r)
	}
	if _, err := s.st.Xref(t.Context(), tenantID, "contact", "M19", "GBP"); err == nil {
		t.Fatal("a document answered for another business was linked")
	}
	if len(s.deadLetters()) != 0 {
		t.Fatal("dead-lettered instead of paused")
	}

	// Readiness and metrics of the running writer.
	if err := svc.Consuming(t.Context()); err != nil {
		t.Errorf("a consuming writer is not ready: %v", err)
	}
	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if want := `ledger_sage_writer_writes_total{outcome="paused"}`; rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), want) {
		t.Errorf("/metrics: %d %.300s", rec.Code, rec.Body.String())
	}
}
