package mapper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/backoff"
	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/policy"
	"github.com/ledgersync/ledger/libs/results"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Events the mapper turns into Sage writes; every other event is skipped with
// reason event_not_supported.
const (
	EventInvoiceCreated    = "invoice.created"
	EventInvoicePaid       = "invoice.paid"
	EventCreditMemoCreated = "creditmemo.created"
	EventCustomerUpserted  = "customer.upserted"
	EventProductUpserted   = "product.upserted"
)

// Events lists the events the mapper maps.
var Events = []string{EventInvoiceCreated, EventInvoicePaid, EventCreditMemoCreated, EventCustomerUpserted, EventProductUpserted}

// retryable is a failure that may pass: the message is redelivered after delay
// (0 = exponential back-off by delivery count). park marks failures an operator
// must fix first (auth drift, an unpaired binding): they are never
// dead-lettered, however often they come back.
type retryable struct {
	class, code string
	delay       time.Duration
	park        bool
	status      int
	err         error
}

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

// decodeError is a Magento answer that is not the canonical shape.
type decodeError struct{ err error }

func (d *decodeError) Error() string { return d.err.Error() }
func (d *decodeError) Unwrap() error { return d.err }

// Backoff is the delay before redelivery number delivered+1 of a transient
// failure: 1 s, 2 s, 4 s … capped at MaxBackoff, with ±20 % jitter so a burst
// of failures does not come back in lock-step.
func Backoff(delivered uint64) time.Duration {
	return backoff.Policy{Base: time.Second, Cap: MaxBackoff, Jitter: 0.2}.Delay(delivered)
}

// SageWriteMsgID is the Nats-Msg-Id of the SageWrite published for run from
// the OUTBOX message at stream sequence seq.
func SageWriteMsgID(run string, seq uint64) string { return fmt.Sprintf("sagewrite:%s:%d", run, seq) }

// job is one delivery of one outbox event.
type job struct {
	s         *Service
	ev        *ledgerv1.OutboxEvent
	msg       jetstream.Msg
	delivered uint64
	// seq is the OUTBOX message's stream sequence. The SageWrite's Nats-Msg-Id
	// is derived from the run and seq: a redelivery of this message (the
	// mapper crashed between publishing and acknowledging) publishes the same
	// id, which JetStream stores once, while an operator's retry or replay is a
	// new message with a new id.
	seq uint64
	log *slog.Logger
	// fetched are the canonical documents fetched for the run, in order,
	// for the run page (store.Mapping.Canonical).
	fetched []fetchedDoc
	// attempts are the Magento calls made for the run, recorded with its
	// mapping (store.Mapping.Attempts) in one transaction.
	attempts []store.Attempt
	// dir is the run's directory; the links it decided are recorded with
	// the mapping too (store.Mapping.Links).
	dir *StoreDirectory
	// unit is the transaction of the directory's reads and the mapping
	// record (closed by mapAndPublish on every way out).
	unit *store.Unit
	// started: the run was started (begin, or with the mapping); run is
	// what the start returned, missing that there was no such run.
	started, missing bool
	run              store.Run
}

// fetchedDoc is one canonical document as Magento answered it.
type fetchedDoc struct {
	key string // "<kind>/<id>"
	raw json.RawMessage
}

// Handle maps one OUTBOX message. It is the bus.Handler of Run; bus.Settle turns
// its outcome into the acknowledgement.
func (s *Service) Handle(ctx context.Context, msg jetstream.Msg) bus.Outcome {
	start := time.Now()
	ev := &ledgerv1.OutboxEvent{}
	if err := proto.Unmarshal(msg.Data(), ev); err != nil || ev.GetTenantId() == "" || ev.GetSyncRunId() == "" {
		reason := "tenant_id or sync_run_id is empty"
		if err != nil {
			reason = err.Error()
		}
		s.log.ErrorContext(ctx, "mapper: outbox message is not an OutboxEvent; dead-lettering", "subject", msg.Subject(), "reason", reason)
		s.outcomes.WithLabelValues("unknown", "failed").Inc()
		return bus.Outcome{
			Verdict: bus.DeadLetter, Class: ClassSerde, Code: CodeOutboxEventInvalid,
			Message:  "the message on " + msg.Subject() + " is not a valid ledger.v1.OutboxEvent: " + reason,
			TenantID: ev.GetTenantId(), RunID: ev.GetSyncRunId(), Entity: entityOf(ev.GetEvent()),
		}
	}
	j := &job{s: s, ev: ev, msg: msg, delivered: 1}
	if meta, err := msg.Metadata(); err == nil && meta != nil {
		j.delivered, j.seq = meta.NumDelivered, meta.Sequence.Stream
	}
	// Log lines written with ctx carry the trace id (the consumer span's).
	j.log = s.log.With("tenant", ev.TenantId, "run", ev.SyncRunId, "event", ev.Event,
		"magento_entity_id", ev.MagentoEntityId, "delivery", j.delivered)
	telemetry.Annotate(ctx, telemetry.AttrRunID.String(ev.SyncRunId), telemetry.AttrEntityType.String(entityOf(ev.Event)),
		telemetry.AttrMagentoEntityID.Int64(ev.MagentoEntityId))
	out := j.handle(ctx)
	s.duration.WithLabelValues(eventLabel(ev.Event)).Observe(time.Since(start).Seconds())
	return out
}

// handle maps the event. The run is started (store.StartRunFrom: running,
// one more attempt, its source message) in the same transaction that records
// its mapping, just before the SageWrite is published (mapAndPublish): one
// commit for both. Every other way out starts it first (begin), so a run that
// is already finished or does not exist is never finished again.
func (j *job) handle(ctx context.Context) bus.Outcome {
	switch j.ev.Event {
	case EventInvoiceCreated, EventInvoicePaid, EventCreditMemoCreated, EventCustomerUpserted, EventProductUpserted:
		return j.outcome(ctx, j.mapAndPublish(ctx))
	default:
		return j.outcome(ctx, &Skip{Reason: SkipEventNotSupported, Message: fmt.Sprintf("Ledger does not sync %q events to Sage", j.ev.Event)})
	}
}

// begin starts the run unless it was started already. It reports, as done,
// an outcome for the message when there is nothing left to do: the run does
// not exist (dead-lettered for an operator), it is already finished (a
// redelivery: acknowledged), or the database failed (retried).
func (j *job) begin(ctx context.Context) (out bus.Outcome, done bool) {
	if !j.started {
		run, err := j.s.st.StartRunFrom(ctx, j.ev.SyncRunId, j.seq)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return j.retry(ctx, &retryable{class: ClassDatabase, code: CodeStoreUnavailable, err: err}), true
		}
		j.started, j.run, j.missing = true, run, errors.Is(err, store.ErrNotFound)
	}
	switch {
	case j.missing:
		// Nothing to finish: the run does not exist here (a message from
		// another environment, or a purged run). Keep it for an operator.
		j.log.ErrorContext(ctx, "mapper: sync run not found; dead-lettering")
		j.count("failed")
		return j.deadLetter(failf(ClassInternal, CodeRunNotFound, "sync run %s does not exist", j.ev.SyncRunId)), true
	case j.run.Terminal():
		j.log.InfoContext(ctx, "mapper: run already finished; nothing to redo", "status", j.run.Status)
		j.count("acked")
		return bus.Done(), true
	}
	return bus.Outcome{}, false
}

// outcome turns the result of mapping into the message's fate. It is the one
// place where a failure becomes a skip, a retry, a held retry or a failed run
// plus a dead letter.
func (j *job) outcome(ctx context.Context, err error) bus.Outcome {
	if out, done := j.begin(ctx); done {
		return out
	}
	if err == nil {
		j.count("published")
		return bus.Done()
	}
	var sk *Skip
	if errors.As(err, &sk) {
		return j.skip(ctx, sk.Reason, sk.Message)
	}
	var f *Failure
	if errors.As(err, &f) {
		return j.fail(ctx, f)
	}
	var r *retryable
	if !errors.As(err, &r) {
		r = &retryable{class: ClassInternal, code: "internal", err: err}
	}
	return j.retry(ctx, r)
}

// retry notes r on the run and retries the message, or fails the run when
// this was its last allowed delivery (and r does not wait on an operator).
func (j *job) retry(ctx context.Context, r *retryable) bus.Outcome {
	if nerr := j.s.st.NoteRunError(ctx, j.ev.SyncRunId, r.class, r.err.Error()); nerr != nil {
		j.log.WarnContext(ctx, "mapper: could not note the run's error", "err", nerr)
	}
	if j.delivered >= MaxDeliver && !r.park {
		return j.fail(ctx, &Failure{Class: r.class, Code: r.code, HTTPStatus: r.status,
			Message: fmt.Sprintf("gave up after %d deliveries: %v", j.delivered, r.err)})
	}
	delay := r.delay
	if delay <= 0 {
		delay = Backoff(j.delivered)
	}
	j.log.WarnContext(ctx, "mapper: will retry", "class", r.class, "code", r.code, "delay", delay, "err", r.err)
	j.count("retry")
	// A held retry (park) waits on an operator: bus.Settle never dead-letters
	// it and requeues it at MaxDeliver.
	return bus.Outcome{Verdict: bus.Retry, Delay: delay, Hold: r.park, Class: r.class, Code: r.code, Message: r.err.Error(),
		HTTPStatus: r.status, TenantID: j.ev.TenantId, RunID: j.ev.SyncRunId, Entity: entityOf(j.ev.Event)}
}

// fail is the rule for permanent failures: the run is finished as failed (its
// result published for Magento's grid), then the original message is
// dead-lettered so an operator can replay it once the cause is fixed. If the
// run cannot be recorded the message is retried instead, so no failure is
// ever silent.
func (j *job) fail(ctx context.Context, f *Failure) bus.Outcome {
	_, err := results.Finish(ctx, j.s.st, j.s.js, store.Outcome{
		RunID: j.ev.SyncRunId, Status: store.RunFailed,
		ErrorClass: f.Class, ErrorCode: f.Code, Message: f.Message,
	})
	if err != nil {
		j.log.ErrorContext(ctx, "mapper: could not record the failed run; retrying", "code", f.Code, "err", err)
		j.count("retry")
		return bus.Outcome{Verdict: bus.Retry, Delay: Backoff(j.delivered), Class: ClassDatabase, Code: CodeStoreUnavailable,
			Message: err.Error(), TenantID: j.ev.TenantId, RunID: j.ev.SyncRunId, Entity: entityOf(j.ev.Event)}
	}
	j.log.WarnContext(ctx, "mapper: run failed", "class", f.Class, "code", f.Code, "message", f.Message)
	j.count("failed")
	return j.deadLetter(f)
}

func (j *job) deadLetter(f *Failure) bus.Outcome {
	return bus.Outcome{Verdict: bus.DeadLetter, Class: f.Class, Code: f.Code, Message: f.Message, HTTPStatus: f.HTTPStatus,
		TenantID: j.ev.TenantId, RunID: j.ev.SyncRunId, Entity: entityOf(j.ev.Event)}
}

// skip finishes the run as skipped.
func (j *job) skip(ctx context.Context, reason, message string) bus.Outcome {
	_, err := results.Finish(ctx, j.s.st, j.s.js, store.Outcome{
		RunID: j.ev.SyncRunId, Status: store.RunSkipped, SkipReason: reason, Message: message,
	})
	if err != nil {
		return j.outcome(ctx, &retryable{class: ClassDatabase, code: CodeStoreUnavailable, err: err})
	}
	telemetry.Annotate(ctx, attribute.String("ledger.skip_reason", reason))
	j.log.InfoContext(ctx, "mapper: run skipped", "skip_reason", reason)
	j.count("skipped")
	return bus.Done()
}

// mapAndPublish fetches the canonical entity, applies the policy, builds the
// SageWrite and publishes it. It returns nil only after the SAGE stream
// acknowledged it; a *Skip, *Failure or *retryable otherwise.
func (j *job) mapAndPublish(ctx context.Context) error {
	t, versions, err := j.s.st.TenantWithVersions(ctx, j.ev.TenantId)
	if errors.Is(err, store.ErrNotFound) {
		return failf(ClassNotFound, CodeTenantNotFound, "tenant %s does not exist", j.ev.TenantId)
	}
	if err != nil {
		return &retryable{class: ClassDatabase, code: CodeStoreUnavailable, err: err}
	}
	b := t.Binding
	if b.MagentoConnectionStatus != store.StatusActive || b.APIKey == "" || b.MagentoBaseURL == "" {
		j.log.WarnContext(ctx, "mapper: the tenant's Magento binding is not usable; holding the event",
			"magento_connection_status", b.MagentoConnectionStatus, "paired", b.APIKey != "")
		return &retryable{class: ClassAuth, code: CodeBindingInactive, delay: LongRetry, park: true,
			err: fmt.Errorf("magento binding of tenant %s is %q: re-pair or reconnect the shop", t.ID, b.MagentoConnectionStatus)}
	}
	pol, polJSON, err := j.policy(ctx, t.ID, versions)
	if err != nil {
		return err
	}
	j.unit = j.s.st.Unit()
	defer j.unit.Close()
	write, err := j.buildWith(ctx, t, versions, pol)
	// The run keeps the policy it was mapped with (a later edit never changes
	// how it was made), the documents it was made from and the operations
	// built, whatever became of them.
	// It is recorded with the run's start, committing the transaction of
	// the directory's reads: a run that turns out finished already (a
	// redelivery) keeps its own record, and nothing is published for it
	// (outcome, begin).
	run, rerr := j.unit.StartAndRecordMapping(ctx, j.ev.SyncRunId, j.seq, store.Mapping{
		Policy: polJSON, Canonical: j.canonicalJSON(), SageRequest: sageRequestJSON(write), Attempts: j.attempts,
		Links: j.dir.Pending(),
	})
	switch {
	case errors.Is(rerr, store.ErrNotFound):
		j.started, j.missing = true, true
		return nil // outcome dead-letters it (begin)
	case rerr != nil:
		return &retryable{class: ClassDatabase, code: CodeStoreUnavailable, err: rerr}
	}
	j.started, j.run = true, run
	if err != nil || run.Terminal() {
		return err // a terminal run is acknowledged by outcome (begin)
	}
	subject := bus.SageSubject(t.ID, write.EntityType)
	if _, err := bus.Publish(ctx, j.s.js, subject, write, SageWriteMsgID(j.ev.SyncRunId, j.seq)); err != nil {
		return &retryable{class: ClassInternal, code: CodePublishFailed, err: err}
	}
	j.log.InfoContext(ctx, "mapper: SageWrite published", "subject", subject, "operations", len(write.Operations),
		"applied_quirks", write.AppliedQuirks)
	return nil
}

// buildWith loads the reference data, fetches the canonical entity and builds
// the SageWrite under pol.
func (j *job) buildWith(ctx context.Context, t store.Tenant, versions store.DataVersions, pol policy.Policy) (*ledgerv1.SageWrite, error) {
	b := t.Binding
	refs, err := j.references(ctx, t.ID, versions)
	if err != nil {
		return nil, err
	}
	if j.ev.MagentoEntityId <= 0 {
		return nil, failf(ClassValidation, CodeEntityIDInvalid, "%s has no Magento entity id to fetch", j.ev.Event)
	}
	client := &magento.Client{BaseURL: b.MagentoBaseURL, TenantID: t.ID, APIKey: b.APIKey, HTTP: j.s.http}
	base := pol.BaseCurrency
	if base == "" {
		base = j.s.cfg.BaseCurrency
	}
	j.dir = NewStoreDirectory(t.ID, j.unit)
	builder := Builder{TenantID: t.ID, Policy: pol, BaseCurrency: base, Refs: refs, Dir: j.dir}

	write, err := j.build(ctx, client, builder, pol)
	if err != nil {
		return nil, err
	}
	write.SyncRunId, write.Event = j.ev.SyncRunId, j.ev.Event
	write.MagentoEntityId = j.ev.MagentoEntityId
	return write, nil
}

// build fetches what the event needs and applies the policy's filters and the
// builder.
func (j *job) build(ctx context.Context, client *magento.Client, builder Builder, pol policy.Policy) (*ledgerv1.SageWrite, error) {
	id := j.ev.MagentoEntityId
	switch j.ev.Event {
	case EventInvoiceCreated:
		var inv Invoice
		if err := j.fetch(ctx, client, "invoice", id, &inv); err != nil {
			return nil, err
		}
		if sk := FilterInvoice(pol, inv); sk != nil {
			return nil, sk
		}
		return builder.Invoice(ctx, inv)
	case EventInvoicePaid:
		var inv Invoice
		if err := j.fetch(ctx, client, "invoice", id, &inv); err != nil {
			return nil, err
		}
		if sk := FilterPayment(pol, inv); sk != nil {
			return nil, sk
		}
		if _, ok := pol.BankAccount(inv.PaymentMethod); !ok && inv.PaymentMethod != "" {
			// Decided before the payment fetch: nothing to record.
			return nil, skipf(SkipPaymentMethodNotMapped,
				"payment method %q of invoice %s has no Sage bank account: map it in payment_method_map (or set default_bank_account_id) and retry; the invoice stays unpaid in Sage",
				inv.PaymentMethod, inv.IncrementID)
		}
		var pay Payment
		if err := j.fetch(ctx, client, "payment", id, &pay); err != nil {
			return nil, err
		}
		return builder.Payment(ctx, inv, pay)
	case EventCreditMemoCreated:
		var cm CreditMemo
		if err := j.fetch(ctx, client, "creditmemo", id, &cm); err != nil {
			return nil, err
		}
		var inv *Invoice
		if cm.InvoiceID != nil && *cm.InvoiceID > 0 {
			inv = &Invoice{}
			if err := j.fetch(ctx, client, "invoice", *cm.InvoiceID, inv); err != nil {
				return nil, err
			}
		}
		if sk := FilterCreditMemo(pol, cm, inv, j.ev.StoreId); sk != nil {
			return nil, sk
		}
		return builder.CreditMemo(ctx, cm, inv)
	case EventCustomerUpserted:
		var c magento.Contact
		if err := j.fetch(ctx, client, "customer", id, &c); err != nil {
			return nil, err
		}
		if sk := FilterCustomer(pol, c.WebsiteID, c.MagentoID); sk != nil {
			return nil, sk
		}
		return builder.Customer(ctx, c)
	case EventProductUpserted:
		if !pol.SyncProducts {
			return nil, skipf(SkipSyncFilterExcluded, "product %d: sync_products is off in the tenant policy", id)
		}
		var p Product
		if err := j.fetch(ctx, client, "product", id, &p); err != nil {
			return nil, err
		}
		if sk := FilterProduct(pol, p); sk != nil {
			return nil, sk
		}
		return builder.Product(ctx, p)
	}
	return nil, skipf(SkipEventNotSupported, "Ledger does not sync %q events to Sage", j.ev.Event)
}

// policy is the tenant's parsed policy at versions (tenantData), with its
// JSON for the run's snapshot, read and parsed only when it changed.
func (j *job) policy(ctx context.Context, tenantID string, versions store.DataVersions) (policy.Policy, []byte, error) {
	if pol, doc, ok := j.s.data.policyAt(tenantID, versions.Policy); ok {
		return pol, doc, nil
	}
	doc, err := j.s.st.Policy(ctx, tenantID)
	if err != nil {
		return policy.Policy{}, nil, &retryable{class: ClassDatabase, code: CodeStoreUnavailable, err: err}
	}
	pol, err := policy.Parse(doc)
	if err != nil {
		return policy.Policy{}, nil, failf(ClassValidation, CodePolicyInvalid, "the tenant policy is not valid: %v", err)
	}
	j.s.data.keep(tenantID, versions, &pol, nil)
	return pol, pol.JSON(), nil
}

// references loads the tenant's Sage reference cache (kinds never fetched
// stay unchecked), read and parsed only when it changed (tenantData).
func (j *job) references(ctx context.Context, tenantID string, versions store.DataVersions) (*policy.References, error) {
	if refs, ok := j.s.data.refsAt(tenantID, versions.Refs); ok {
		return refs, nil
	}
	docs := map[string][]byte{}
	for _, kind := range policy.RefKinds {
		doc, _, err := j.s.st.RefCache(ctx, tenantID, kind)
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			return nil, &retryable{class: ClassDatabase, code: CodeStoreUnavailable, err: err}
		}
		docs[kind] = doc
	}
	refs, err := policy.ParseReferences(docs)
	if err != nil {
		return nil, failf(ClassValidation, CodeRefCacheStale, "the Sage reference cache is unreadable (%v): refresh it (ledgerctl refdata refresh --tenant %s)", err, tenantID)
	}
	j.s.data.keep(tenantID, versions, nil, &refs)
	return &refs, nil
}

// fetch GETs /V1/byte8/{kind}/{id} into out, records the attempt and
// classifies a failure.
func (j *job) fetch(ctx context.Context, c *magento.Client, kind string, id int64, out any) error {
	path := fmt.Sprintf("/V1/byte8/%s/%d", kind, id)
	start := time.Now()
	var raw json.RawMessage
	err := c.Get(ctx, path, &raw)
	if err == nil {
		j.fetched = append(j.fetched, fetchedDoc{key: fmt.Sprintf("%s/%d", kind, id), raw: raw})
		if derr := json.Unmarshal(raw, out); derr != nil {
			err = &decodeError{derr}
		}
	}
	classified := j.classify(ctx, c, kind, id, path, err)
	j.record(path, start, err, classified)
	return classified
}

// classify decides what a Magento error means for the run.
func (j *job) classify(ctx context.Context, c *magento.Client, kind string, id int64, path string, err error) error {
	if err == nil {
		return nil
	}
	var he *magento.HTTPError
	var se *json.SyntaxError
	var de *decodeError
	switch {
	case errors.As(err, &he) && he.Status == http.StatusNotFound:
		return &Failure{Class: ClassNotFound, Code: CodeEntityNotFound, HTTPStatus: he.Status,
			Message: fmt.Sprintf("Magento has no %s %d (GET /rest%s answered 404: %s); if it was deleted there is nothing to sync, otherwise replay this dead letter once it exists", kind, id, path, he.Message)}
	case errors.As(err, &he) && he.Status == http.StatusUnauthorized:
		return j.authDrift(ctx, c, he)
	case errors.As(err, &he) && he.Transient():
		return &retryable{class: ClassHTTP, code: CodeMagentoUnavailable, status: he.Status, err: err}
	case errors.As(err, &he):
		return &Failure{Class: ClassHTTP, Code: CodeRequestRejected, HTTPStatus: he.Status,
			Message: fmt.Sprintf("Magento refused GET /rest%s with HTTP %d: %s", path, he.Status, he.Message)}
	case errors.As(err, &de) || errors.As(err, &se):
		return &Failure{Class: ClassSerde, Code: CodeResponseInvalid,
			Message: fmt.Sprintf("Magento's answer to GET /rest%s is not a canonical %s: %v", path, kind, err)}
	default: // network, timeout, reset
		return &retryable{class: ClassHTTP, code: CodeMagentoUnavailable, err: err}
	}
}

// authDrift handles a 401: Magento no longer accepts the tenant's key. A ping
// confirms it (a one-off 401 is retried normally); a confirmed revocation flips
// the binding to token_revoked, visible on the tile and dashboard, and parks the
// event until the shop is re-paired. It is never dead-lettered.
func (j *job) authDrift(ctx context.Context, c *magento.Client, he *magento.HTTPError) error {
	start := time.Now()
	perr := c.Ping(ctx)
	j.record("/V1/byte8/ping", start, perr, perr)
	if perr == nil || !magento.IsStatus(perr, http.StatusUnauthorized) {
		return &retryable{class: ClassAuth, code: CodeTokenRevoked, status: he.Status, err: he}
	}
	if err := j.s.st.SetMagentoStatus(ctx, j.ev.TenantId, store.StatusTokenRevoked); err != nil {
		return &retryable{class: ClassDatabase, code: CodeStoreUnavailable, err: err}
	}
	j.log.ErrorContext(ctx, "mapper: Magento rejects the tenant's key; binding marked token_revoked", "status", he.Status)
	return &retryable{class: ClassAuth, code: CodeTokenRevoked, delay: LongRetry, park: true, status: he.Status,
		err: fmt.Errorf("magento rejected the tenant's api key (HTTP 401): re-pair the shop: %w", he)}
}

// record keeps the attempt for the run's history: it is written with the
// run's mapping (mapAndPublish: every fetch happens while building, and the
// mapping is recorded whatever the build's outcome). A failure to record is
// logged, never fatal.
func (j *job) record(path string, start time.Time, err, classified error) {
	a := store.Attempt{RunID: j.ev.SyncRunId, Stage: Stage, Method: http.MethodGet, Path: "/rest" + path,
		Duration: time.Since(start), Outcome: "ok", HTTPStatus: http.StatusOK, At: start}
	if err != nil {
		a.HTTPStatus = 0
		var he *magento.HTTPError
		if errors.As(err, &he) {
			a.HTTPStatus = he.Status
			a.Envelope = he.Body
		} else if errors.As(err, new(*decodeError)) {
			a.Envelope = err.Error()
		}
		a.Outcome = "retry"
		if errors.As(classified, new(*Failure)) {
			a.Outcome = "failed"
		}
	}
	j.s.fetches.WithLabelValues(fmt.Sprint(a.HTTPStatus)).Observe(a.Duration.Seconds())
	j.attempts = append(j.attempts, a)
}

func (j *job) count(outcome string) {
	j.s.outcomes.WithLabelValues(eventLabel(j.ev.Event), outcome).Inc()
}

// eventLabel bounds metric label values to the known events.
func eventLabel(event string) string {
	switch event {
	case EventInvoiceCreated, EventCustomerUpserted, EventInvoicePaid, EventCreditMemoCreated, EventProductUpserted:
		return event
	}
	return "other"
}

// entityOf is the entity token of DLQ subjects.
func entityOf(event string) string {
	if e := magento.EntityType(event); e != "" {
		return e
	}
	return "none"
}
