package sagewriter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// resource is where an operation's document lives in Sage.
type resource struct {
	path    string // collection under /v3.1, without the slash
	rootKey string // the request body's root key
}

// resources maps each SageResource to its collection and root key.
var resources = map[ledgerv1.SageResource]resource{
	ledgerv1.SageResource_SAGE_RESOURCE_CONTACT:            {"contacts", "contact"},
	ledgerv1.SageResource_SAGE_RESOURCE_SALES_INVOICE:      {"sales_invoices", "sales_invoice"},
	ledgerv1.SageResource_SAGE_RESOURCE_SALES_CREDIT_NOTE:  {"sales_credit_notes", "sales_credit_note"},
	ledgerv1.SageResource_SAGE_RESOURCE_CONTACT_PAYMENT:    {"contact_payments", "contact_payment"},
	ledgerv1.SageResource_SAGE_RESOURCE_CONTACT_ALLOCATION: {"contact_allocations", "contact_allocation"},
	ledgerv1.SageResource_SAGE_RESOURCE_PRODUCT:            {"products", "product"},
	ledgerv1.SageResource_SAGE_RESOURCE_SERVICE:            {"services", "service"},
}

// execute runs the write's operations in order against the binding's business
// and returns the Sage id of each operation by key.
func (s *Service) execute(ctx context.Context, log *slog.Logger, w *ledgerv1.SageWrite) (map[string]string, error) {
	t, err := s.st.Tenant(ctx, w.GetTenantId())
	if errors.Is(err, store.ErrNotFound) {
		return nil, &invalidWrite{msg: "unknown tenant " + w.GetTenantId()}
	}
	if err != nil {
		return nil, storeErr("reading the tenant", err)
	}
	b := t.Binding
	if b.Status != store.StatusActive || b.SageBusinessID == "" {
		return nil, fmt.Errorf("%w (status %q)", errBindingNotActive, b.Status)
	}
	// Sage asks for no parallel POSTs to one business (reference §4.8). This
	// lock serialises them within this process only; serialising across
	// replicas (one owner per business partition) is a later issue.
	unlock, err := s.locks.lock(ctx, b.SageBusinessID)
	if err != nil {
		return nil, errors.New("timed out waiting for the business's write lock")
	}
	defer unlock()

	ts := NewTokenSource(s.st, s.oauth, w.GetTenantId())
	ex := &executor{
		s: s, log: log, w: w, ts: ts, ids: map[string]string{},
		client: &sage.Client{BaseURL: s.cfg.Endpoints.APIURL, HTTP: s.http, Tokens: ts, BusinessID: b.SageBusinessID},
	}
	for _, op := range w.GetOperations() {
		if err := ex.run(ctx, op); err != nil {
			return ex.ids, &OpError{TenantID: w.GetTenantId(), Op: op, Err: err}
		}
	}
	return ex.ids, nil
}

// executor runs one write's operations.
type executor struct {
	s      *Service
	log    *slog.Logger
	w      *ledgerv1.SageWrite
	ts     *TokenSource
	client *sage.Client
	ids    map[string]string // Sage id by operation key
}

// run ensures one operation's document exists: entity_xref first, then a
// POST, resolving an ambiguous failure by looking the document up.
func (ex *executor) run(ctx context.Context, op *ledgerv1.SageOperation) error {
	res, ok := resources[op.GetResource()]
	if !ok {
		return &invalidWrite{msg: fmt.Sprintf("operation %q has no known Sage resource (%s)", op.GetKey(), op.GetResource())}
	}
	if op.GetXrefKind() != "" {
		x, err := ex.s.st.Xref(ctx, ex.w.GetTenantId(), op.GetXrefKind(), op.GetXrefKey(), op.GetCurrency())
		switch {
		case err == nil:
			ex.ids[op.GetKey()] = x.SageID
			ex.log.Debug("document already in Sage; no call", "op", op.GetKey(), "sage_id", x.SageID)
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return storeErr("reading entity_xref", err)
		}
	}
	body, err := buildBody(op, ex.ids)
	if err != nil {
		return err
	}

	path := "/" + res.path
	var doc sage.Document
	var resp *sage.Response
	start := time.Now()
	err = ex.call(ctx, func() error {
		start = time.Now()
		var cerr error
		doc, resp, cerr = ex.client.Create(ctx, res.path, res.rootKey, body)
		if cerr != nil && resp != nil {
			// 2xx without an id: whatever Sage did is unknown.
			cerr = fmt.Errorf("%w: %w", errUnexpectedAnswer, cerr)
		}
		return cerr
	})
	if err == nil {
		if resp.Business != "" && resp.Business != ex.client.BusinessID {
			ex.log.Warn("lead business changed", "requested_business", ex.client.BusinessID,
				"answered_business", resp.Business, "path", path, "request_id", resp.RequestID)
			ex.attempt(ctx, store.Attempt{Method: http.MethodPost, Path: path, HTTPStatus: resp.Status,
				Duration: resp.Duration, RequestID: resp.RequestID, Outcome: "failed"})
			return errBusinessChanged
		}
		ex.attempt(ctx, store.Attempt{Method: http.MethodPost, Path: path, HTTPStatus: resp.Status,
			Duration: resp.Duration, RequestID: resp.RequestID, Outcome: "ok"})
		return ex.created(ctx, op, doc)
	}

	d := Classify(&OpError{TenantID: ex.w.GetTenantId(), Op: op, Err: err})
	ex.failed(ctx, http.MethodPost, path, time.Since(start), err, d)
	if !d.Ambiguous || op.GetReference() == "" {
		return err
	}
	// The POST may have created the document (5xx or a lost answer after the
	// request left): look before anyone creates it again. The next delivery's
	// POST carries the same idempotency_id, a second guard.
	docs, lerr := ex.lookup(ctx, res, op.GetReference())
	switch {
	case lerr != nil:
		ex.log.Warn("could not resolve an ambiguous create by lookup; retrying later", "op", op.GetKey(),
			"reference", op.GetReference(), "err", lerr)
		return err
	case len(docs) == 1:
		ex.log.Info("ambiguous create resolved by lookup: the document exists", "op", op.GetKey(),
			"reference", op.GetReference(), "sage_id", docs[0].ID)
		ex.attempt(ctx, store.Attempt{Method: http.MethodGet, Path: searchPath(res, op.GetReference()),
			HTTPStatus: http.StatusOK, Outcome: "resolved"})
		return ex.created(ctx, op, docs[0])
	case len(docs) > 1:
		return fmt.Errorf("%w: %d %s with reference %q", errMultipleMatches, len(docs), res.path, op.GetReference())
	}
	return err // not created: retry the POST later
}

// created records a document that now exists in Sage.
func (ex *executor) created(ctx context.Context, op *ledgerv1.SageOperation, doc sage.Document) error {
	if op.GetXrefKind() != "" {
		ref := doc.Reference
		if ref == "" {
			ref = op.GetReference()
		}
		if err := ex.s.st.PutXref(ctx, store.Xref{TenantID: ex.w.GetTenantId(), Kind: op.GetXrefKind(),
			MagentoKey: op.GetXrefKey(), Currency: op.GetCurrency(), SageID: doc.ID, Reference: ref}); err != nil {
			// Sage has it but Ledger does not know: the retry's POST replays
			// the same idempotency_id and gets the same document back.
			return storeErr("recording entity_xref", err)
		}
	}
	ex.ids[op.GetKey()] = doc.ID
	return nil
}

// lookup finds documents of res whose reference is ref.
func (ex *executor) lookup(ctx context.Context, res resource, ref string) ([]sage.Document, error) {
	var docs []sage.Document
	err := ex.call(ctx, func() error {
		var lerr error
		docs, lerr = ex.client.FindByReference(ctx, res.path, ref)
		return lerr
	})
	return docs, err
}

// call runs fn; when Sage answers 401 it refreshes the access token (whatever
// its stored expiry says) and runs fn once more.
func (ex *executor) call(ctx context.Context, fn func() error) error {
	start := time.Now()
	err := fn()
	var ae *sage.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		return err
	}
	ex.failed(ctx, ae.Method, ae.Path, time.Since(start), err, Decision{Verdict: Retry, Source: ae.Primary().Source})
	if rerr := ex.ts.ForceRefresh(ctx); rerr != nil {
		return rerr
	}
	return fn()
}

// failed records a failed attempt and logs a Sage 4xx envelope once.
func (ex *executor) failed(ctx context.Context, method, path string, dur time.Duration, err error, d Decision) {
	outcome := "retry"
	if d.Verdict == DeadLetter {
		outcome = "failed"
	}
	a := store.Attempt{Method: method, Path: path, Duration: dur, Outcome: outcome, Envelope: redact(err.Error())}
	var ae *sage.APIError
	if errors.As(err, &ae) {
		a.HTTPStatus, a.RequestID, a.ErrorSource, a.Envelope = ae.Status, ae.RequestID, ae.Primary().Source, redact(ae.Body)
		a.Method, a.Path = ae.Method, ae.Path
		switch {
		case ae.Status == http.StatusTooManyRequests:
			ex.log.Info("Sage 429: backing off", "path", ae.Path, "request_id", ae.RequestID, "retry_after", ae.RetryAfter)
		case ae.Status >= 400 && ae.Status < 500:
			ex.log.Warn("Sage 4xx — full error envelope", "status", ae.Status, "method", ae.Method, "path", ae.Path,
				"request_id", ae.RequestID, "source", ae.Primary().Source, "envelope", a.Envelope)
		}
	}
	ex.attempt(ctx, a)
}

// attempt appends to the run's attempt history; losing one is logged, not fatal.
func (ex *executor) attempt(ctx context.Context, a store.Attempt) {
	a.RunID, a.Stage = ex.w.GetSyncRunId(), Stage
	if err := ex.s.st.RecordAttempt(ctx, a); err != nil {
		ex.log.Warn("could not record a Sage attempt", "path", a.Path, "err", err)
	}
}

// buildBody is the operation's JSON object plus idempotency_id and the bound
// ids of earlier operations.
func buildBody(op *ledgerv1.SageOperation, ids map[string]string) (json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	if raw := op.GetBody(); len(raw) > 0 {
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return nil, &invalidWrite{msg: fmt.Sprintf("operation %q: body is not a JSON object", op.GetKey())}
		}
	}
	if id := op.GetIdempotencyId(); id != "" {
		obj["idempotency_id"], _ = json.Marshal(id)
	}
	for _, b := range op.GetBindings() {
		id, ok := ids[b.GetFromKey()]
		if !ok || b.GetField() == "" {
			return nil, &invalidWrite{msg: fmt.Sprintf("operation %q binds %q to %q, which is not an earlier operation of the write",
				op.GetKey(), b.GetField(), b.GetFromKey())}
		}
		obj[b.GetField()], _ = json.Marshal(id)
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, &invalidWrite{msg: fmt.Sprintf("operation %q: %v", op.GetKey(), err)}
	}
	return out, nil
}

func searchPath(res resource, ref string) string {
	return "/" + res.path + "?" + url.Values{"search": {ref}}.Encode()
}
