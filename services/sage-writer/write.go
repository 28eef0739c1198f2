package sagewriter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ledgersync/ledger/libs/money"
	"github.com/ledgersync/ledger/libs/sage"
	"github.com/ledgersync/ledger/libs/sage/budget"
	"github.com/ledgersync/ledger/libs/sagewrite"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// written is what execute did: the Sage id of each operation by key, what the
// run did in Sage (store.ChangeCreated, …), and the delivery's journal (its
// attempts and links), which conclude writes with the run's conclusion.
type written struct {
	ids     map[string]string
	change  string
	journal store.Journal
}

// execute runs the write's operations in order against the binding's
// business. links: every link the write's operations may have, read with the
// run's start. earlier: the run's history holds attempts of this stage (an
// earlier delivery's, or from before an operator's retry), which are read.
// last: this is the last delivery JetStream allows.
func (s *Service) execute(ctx context.Context, log *slog.Logger, d Delivery, w *ledgerv1.SageWrite, run store.Run,
	links map[store.XrefKey]store.Xref, earlier, last bool) (written, error) {
	t, err := s.st.Tenant(ctx, w.GetTenantId())
	if errors.Is(err, store.ErrNotFound) {
		return written{}, &invalidWrite{msg: "unknown tenant " + w.GetTenantId()}
	}
	if err != nil {
		return written{}, storeErr("reading the tenant", err)
	}
	b := t.Binding
	if b.Status != store.StatusActive || b.SageBusinessID == "" {
		return written{}, fmt.Errorf("%w (status %q)", errBindingNotActive, b.Status)
	}
	// Sage asks integrators not to POST to one business in parallel. The
	// tenant's consumer already runs one write at a time across replicas
	// (consumers.go); this lock covers two tenants bound to one business
	// within this process.
	unlock, err := s.locks.lock(ctx, b.SageBusinessID)
	if err != nil {
		return written{}, errors.New("timed out waiting for the business's write lock")
	}
	defer unlock()

	ts := NewTokenSource(s.st, s.oauth, w.GetTenantId())
	ex := &executor{
		s: s, d: d, log: log, w: w, ts: ts,
		client: &sage.Client{BaseURL: s.cfg.RegionAPI.For(b.SageRegion, s.cfg.Endpoints.APIURL), HTTP: s.http,
			Tokens: ts, BusinessID: b.SageBusinessID},
		// No redelivery follows a crash in the last allowed delivery: what
		// it creates is recorded at once (package doc).
		eager: last,
	}
	var history []store.Attempt
	if earlier {
		// A retry: find the creates an earlier delivery left ambiguous, so
		// they are looked up before anything is POSTed again (Sage's
		// idempotency replay lasts 7 days; the lookup has no limit). A first
		// delivery has no history and reads none.
		if history, err = d.Attempts(ctx, run.ID); err != nil {
			return written{}, storeErr("reading the run's attempts", err)
		}
		ex.unresolved = unresolvedCreates(history)
	}
	// Every link the write's operations may have was read with the run's
	// start, in one statement. The tenant's writes are serialised (one in
	// flight per tenant across replicas: consumers.go, MaxAckPending 1), so
	// no other write changes them meanwhile and that read sees what a read
	// before each operation would; the executor keeps the map current as
	// this write creates documents and updates digests. Only an operator's
	// relink (ledgerctl xref set) could race with it, as it could with a read
	// per operation.
	ex.links = links
	if ex.links == nil {
		ex.links = map[store.XrefKey]store.Xref{}
	}
	res, err := sagewrite.Execute(ctx, w, ex)
	out := written{ids: res.IDs, journal: ex.journal}
	var oe *sagewrite.OpError
	if errors.As(err, &oe) {
		return out, &OpError{TenantID: w.GetTenantId(), Business: b.SageBusinessID, Op: oe.Op, Err: asInvalidWrite(oe.Err)}
	}
	if err != nil {
		return out, err
	}
	out.change = res.Change()
	if out.change != store.ChangeCreated && earlier {
		// An earlier delivery of this run may have written what this one
		// found already done (its result was not recorded).
		out.change = earlierChange(history, out.change)
	}
	return out, nil
}

// xrefKeys are the links of w's operations that have one.
func xrefKeys(w *ledgerv1.SageWrite) []store.XrefKey {
	var keys []store.XrefKey
	for _, op := range w.GetOperations() {
		if op.GetXrefKind() != "" {
			keys = append(keys, xrefKey(op))
		}
	}
	return keys
}

func xrefKey(op *ledgerv1.SageOperation) store.XrefKey {
	return store.XrefKey{Kind: op.GetXrefKind(), MagentoKey: op.GetXrefKey(), Currency: op.GetCurrency()}
}

// earlierChange is change raised by what the run's earlier deliveries did in
// Sage (its attempt history): a create (a POST answered, or resolved by
// lookup) makes it created, an update (a PUT answered) updated.
func earlierChange(history []store.Attempt, change string) string {
	for _, a := range history {
		switch {
		case a.Stage != Stage:
		case a.Method == http.MethodPost && a.Outcome == "ok", a.Outcome == outcomeResolved:
			return store.ChangeCreated
		case a.Method == http.MethodPut && a.Outcome == "ok":
			change = store.ChangeUpdated
		}
	}
	return change
}

// asInvalidWrite turns the interpreter's refusal of a write that can never be
// executed as sent into the writer's invalidWrite (dead-lettered at once);
// other errors pass unchanged.
func asInvalidWrite(err error) error {
	var ie *sagewrite.InvalidError
	if errors.As(err, &ie) {
		return &invalidWrite{msg: ie.Error()}
	}
	return err
}

// Attempt outcomes the writer records beyond ok, retry and failed.
const (
	outcomeAmbiguous = "ambiguous" // a create that may have happened (5xx, lost answer)
	outcomeResolved  = "resolved"  // lookup found the document: it was created
	outcomeAbsent    = "absent"    // lookup found nothing: it was not created
)

// unresolvedCreates returns the collections whose last create attempt in the
// run's history was ambiguous and not resolved by a lookup since.
func unresolvedCreates(history []store.Attempt) map[string]bool {
	out := map[string]bool{}
	for _, a := range history {
		if a.Stage != Stage {
			continue
		}
		coll := strings.TrimPrefix(a.Path, "/")
		if i := strings.IndexAny(coll, "/?"); i >= 0 {
			coll = coll[:i]
		}
		switch {
		case a.Method == http.MethodPost && a.Outcome == outcomeAmbiguous:
			out[coll] = true
		case a.Outcome == "ok" && a.Method == http.MethodPost, a.Outcome == outcomeResolved, a.Outcome == outcomeAbsent:
			out[coll] = false
		}
	}
	return out
}

// executor does the Sage and store side of one write's operations for
// sagewrite.Execute (a sagewrite.Updater).
type executor struct {
	s      *Service
	d      Delivery // the delivery's transaction, which checkpoints commit
	log    *slog.Logger
	w      *ledgerv1.SageWrite
	ts     *TokenSource
	client *sage.Client
	// unresolved: collections with an ambiguous create in an earlier delivery.
	unresolved map[string]bool
	// links: the write's entity_xref links read at its start (execute), kept
	// current with what this delivery created and updated.
	links map[store.XrefKey]store.Xref
	// journal: the attempts and link writes of this delivery not yet
	// recorded; conclude writes them with the run's conclusion.
	journal store.Journal
	// eager: record each created link at once (checkpoint), for a delivery
	// no redelivery follows.
	eager bool
}

// Existing returns the id of op's document when it is known (Known).
func (ex *executor) Existing(ctx context.Context, op *ledgerv1.SageOperation) (string, bool, error) {
	doc, ok, err := ex.Known(ctx, op)
	return doc.ID, ok, err
}

// Known returns the document entity_xref holds for op, with the digest of the
// body last written to it, if any; or, after an ambiguous create of its
// collection in an earlier delivery, the document found by its reference
// (recorded, and created by this run).
func (ex *executor) Known(ctx context.Context, op *ledgerv1.SageOperation) (sagewrite.Known, bool, error) {
	if op.GetXrefKind() != "" {
		if x, ok := ex.links[xrefKey(op)]; ok {
			ex.log.DebugContext(ctx, "document already in Sage", "op", op.GetKey(), "sage_id", x.SageID)
			return sagewrite.Known{ID: x.SageID, Digest: x.Digest}, true, nil
		}
	}
	if res, ok := sagewrite.ResourceOf(op.GetResource()); ok && ex.unresolved[res.Collection] && op.GetReference() != "" {
		id, err := ex.resolve(ctx, op, res, "")
		return sagewrite.Known{ID: id, Created: true}, id != "", err
	}
	return sagewrite.Known{}, false, nil
}

// Update PUTs req to the known document doc, then notes req.Digest as the
// body last written to it (in the journal). A PUT is idempotent: after a
// failure, or a crash before the journal is written, the next delivery sends
// it again (with the same idempotency_id, so Sage replays one that did
// arrive); nothing needs looking up.
func (ex *executor) Update(ctx context.Context, op *ledgerv1.SageOperation, doc sagewrite.Known, req sagewrite.Request) error {
	res := req.Resource
	body, err := req.JSON()
	if err != nil {
		return err
	}
	path := "/" + res.Collection + "/" + url.PathEscape(doc.ID)
	var resp *sage.Response
	start := time.Now()
	err = ex.call(ctx, func() error {
		start = time.Now()
		var uerr error
		_, resp, uerr = ex.client.Update(ctx, res.Collection, res.RootKey, doc.ID, body)
		if uerr != nil && resp != nil {
			uerr = fmt.Errorf("%w: %w", errUnexpectedAnswer, uerr)
		}
		return uerr
	})
	if err != nil {
		ex.failed(ctx, http.MethodPut, path, time.Since(start), err, Classify(&OpError{TenantID: ex.w.GetTenantId(), Op: op, Err: err}))
		return err
	}
	ex.attempt(ctx, store.Attempt{Method: http.MethodPut, Path: path, HTTPStatus: resp.Status,
		Duration: resp.Duration, RequestID: resp.RequestID, Outcome: "ok"})
	ex.log.InfoContext(ctx, "Sage document updated", "op", op.GetKey(), "sage_id", doc.ID, "path", path)
	// Recorded if the link still names doc.ID when the journal is written
	// (an operator's relink meanwhile keeps its own); until then a retry
	// finds the old digest and sends the same PUT again, which changes
	// nothing.
	x := store.Xref{TenantID: ex.w.GetTenantId(), Kind: op.GetXrefKind(), MagentoKey: op.GetXrefKey(),
		Currency: op.GetCurrency(), SageID: doc.ID, Digest: req.Digest}
	ex.journal.Links = append(ex.journal.Links, store.LinkWrite{Xref: x, DigestOnly: true})
	if known, ok := ex.links[xrefKey(op)]; ok && known.SageID == doc.ID {
		known.Digest = req.Digest
		ex.links[xrefKey(op)] = known
	}
	return nil
}

// Outstanding reads the outstanding_amount of document id of res.
func (ex *executor) Outstanding(ctx context.Context, res sagewrite.Resource, id string) (money.Amount, error) {
	var doc struct {
		OutstandingAmount *money.Amount `json:"outstanding_amount"`
	}
	path := "/" + res.Collection + "/" + url.PathEscape(id)
	start := time.Now()
	err := ex.call(ctx, func() error {
		start = time.Now()
		return ex.client.Get(ctx, path, &doc)
	})
	if err != nil {
		ex.failed(ctx, http.MethodGet, path, time.Since(start), err, Classify(err))
		return money.Zero, err
	}
	if doc.OutstandingAmount == nil {
		return money.Zero, fmt.Errorf("%w: GET %s has no outstanding_amount", errUnexpectedAnswer, path)
	}
	ex.attempt(ctx, store.Attempt{Method: http.MethodGet, Path: path, HTTPStatus: http.StatusOK,
		Duration: time.Since(start), Outcome: "ok"})
	return *doc.OutstandingAmount, nil
}

// Create ensures op's document exists with a POST of req, resolving an
// ambiguous failure by looking the document up.
func (ex *executor) Create(ctx context.Context, op *ledgerv1.SageOperation, req sagewrite.Request) (string, error) {
	res := req.Resource
	body, err := req.JSON()
	if err != nil {
		return "", err
	}

	path := "/" + res.Collection
	var doc sage.Document
	var resp *sage.Response
	start := time.Now()
	err = ex.call(ctx, func() error {
		start = time.Now()
		var cerr error
		doc, resp, cerr = ex.client.Create(ctx, res.Collection, res.RootKey, body)
		if cerr != nil && resp != nil {
			// 2xx without an id: whatever Sage did is unknown.
			cerr = fmt.Errorf("%w: %w", errUnexpectedAnswer, cerr)
		}
		return cerr
	})
	if err == nil {
		ex.attempt(ctx, store.Attempt{Method: http.MethodPost, Path: path, HTTPStatus: resp.Status,
			Duration: resp.Duration, RequestID: resp.RequestID, Outcome: "ok"})
		return ex.created(ctx, op, doc, req.Digest)
	}

	d := Classify(&OpError{TenantID: ex.w.GetTenantId(), Op: op, Err: err})
	ex.failed(ctx, http.MethodPost, path, time.Since(start), err, d)
	if !d.Ambiguous || op.GetReference() == "" {
		return "", err
	}
	// The POST may have created the document (5xx or a lost answer after the
	// request left): look before anyone creates it again. If the lookup fails
	// too, the next delivery looks first (unresolvedCreates); its POST also
	// carries the same idempotency_id, a second guard for 7 days.
	id, lerr := ex.resolve(ctx, op, res, req.Digest)
	switch {
	case lerr != nil && errors.Is(lerr, errMultipleMatches):
		return "", lerr
	case lerr != nil:
		ex.log.InfoContext(ctx, "could not resolve an ambiguous create by lookup; the next delivery looks first", "op", op.GetKey(),
			"reference", op.GetReference(), "err", lerr)
		return "", err
	case id != "":
		return id, nil
	}
	return "", err // not created: retry the POST later
}

// resolve looks op's document up by reference: its id (recorded, with digest
// as the body written when it is known) when exactly one exists,
// errMultipleMatches for several, "" when none.
func (ex *executor) resolve(ctx context.Context, op *ledgerv1.SageOperation, res sagewrite.Resource, digest string) (string, error) {
	start := time.Now()
	docs, err := ex.lookup(ctx, res, op.GetReference())
	path := searchPath(res, op.GetReference())
	if err != nil {
		ex.failed(ctx, http.MethodGet, path, time.Since(start), err, Classify(err))
		return "", err
	}
	switch len(docs) {
	case 0:
		ex.attempt(ctx, store.Attempt{Method: http.MethodGet, Path: path, HTTPStatus: http.StatusOK,
			Duration: time.Since(start), Outcome: outcomeAbsent})
		return "", nil
	case 1:
		ex.log.InfoContext(ctx, "ambiguous create resolved by lookup: the document exists", "op", op.GetKey(),
			"reference", op.GetReference(), "sage_id", docs[0].ID)
		ex.attempt(ctx, store.Attempt{Method: http.MethodGet, Path: path, HTTPStatus: http.StatusOK,
			Duration: time.Since(start), Outcome: outcomeResolved})
		return ex.created(ctx, op, docs[0], digest)
	}
	return "", fmt.Errorf("%w: %d %s with reference %q", errMultipleMatches, len(docs), res.Collection, op.GetReference())
}

// created notes the link of a document that now exists in Sage, written from
// a body whose update digest is digest ("" for none), and returns its id. The
// link is written with the run's conclusion (the journal); until then Sage has
// the document but Ledger does not know it, and a retry's POST replays the
// same idempotency_id and gets the same document back (package doc).
func (ex *executor) created(ctx context.Context, op *ledgerv1.SageOperation, doc sage.Document, digest string) (string, error) {
	if op.GetXrefKind() != "" {
		ref := doc.Reference
		if ref == "" {
			ref = op.GetReference()
		}
		x := store.Xref{TenantID: ex.w.GetTenantId(), Kind: op.GetXrefKind(), MagentoKey: op.GetXrefKey(),
			Currency: op.GetCurrency(), SageID: doc.ID, Reference: ref, Digest: digest}
		ex.journal.Links = append(ex.journal.Links, store.LinkWrite{Xref: x})
		ex.links[xrefKey(op)] = x
		if ex.eager {
			ex.checkpoint(ctx)
		}
	}
	return doc.ID, nil
}

// lookup finds documents of res whose reference is ref.
func (ex *executor) lookup(ctx context.Context, res sagewrite.Resource, ref string) ([]sage.Document, error) {
	var docs []sage.Document
	err := ex.call(ctx, func() error {
		var lerr error
		docs, lerr = ex.client.FindByReference(ctx, res.Collection, ref)
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

// failed records a failed attempt and logs it once: at WARN with the full
// envelope (secrets redacted), except a 429, which is back-pressure (INFO). A
// call the rate budget refused before sending is no attempt and is not
// recorded.
func (ex *executor) failed(ctx context.Context, method, path string, dur time.Duration, err error, d Decision) {
	var bp *budget.BackPressure
	if errors.As(err, &bp) {
		ex.log.DebugContext(ctx, "call held back by the rate budget", "path", path, "reason", bp.Reason, "wait", bp.Wait)
		return
	}
	outcome := "retry"
	switch {
	case d.Verdict == DeadLetter:
		outcome = "failed"
	case d.Ambiguous && (method == http.MethodPost || method == http.MethodPut):
		outcome = outcomeAmbiguous
	}
	a := store.Attempt{Method: method, Path: path, Duration: dur, Outcome: outcome, Envelope: redact(err.Error())}
	var ae *sage.APIError
	if !errors.As(err, &ae) {
		ex.log.WarnContext(ctx, "Sage call failed without an answer", "method", method, "path", path, "class", d.Class,
			"code", d.Code, "ambiguous", d.Ambiguous, "err", a.Envelope)
		ex.attempt(ctx, a)
		return
	}
	a.HTTPStatus, a.RequestID, a.ErrorSource, a.Envelope = ae.Status, ae.RequestID, ae.Primary().Source, redact(ae.Body)
	a.Method, a.Path = ae.Method, ae.Path
	switch {
	case ae.Status == http.StatusTooManyRequests:
		ex.log.InfoContext(ctx, "Sage 429: business slowed down", "path", ae.Path, "request_id", ae.RequestID, "retry_after", ae.RetryAfter)
	case ae.Status >= 500:
		ex.log.WarnContext(ctx, "Sage 5xx — full error envelope", "status", ae.Status, "method", ae.Method, "path", ae.Path,
			"request_id", ae.RequestID, "source", ae.Primary().Source, "ambiguous", d.Ambiguous, "envelope", a.Envelope)
	default:
		ex.log.WarnContext(ctx, "Sage 4xx — full error envelope", "status", ae.Status, "method", ae.Method, "path", ae.Path,
			"request_id", ae.RequestID, "source", ae.Primary().Source, "code", d.Code, "envelope", a.Envelope)
	}
	ex.attempt(ctx, a)
}

// attempt appends to the run's attempt history: to the journal, written with
// the run's conclusion, except an ambiguous create, which is written at once
// with everything journaled before it (checkpoint): it is what makes a later
// delivery look the document up before it POSTs again, and that delivery may
// come after Sage's 7-day idempotency replay has lapsed.
func (ex *executor) attempt(ctx context.Context, a store.Attempt) {
	a.RunID, a.Stage, a.At = ex.w.GetSyncRunId(), Stage, time.Now()
	ex.journal.Attempts = append(ex.journal.Attempts, a)
	if a.Outcome == outcomeAmbiguous {
		ex.checkpoint(ctx)
	}
}

// checkpoint writes the journal so far in one transaction and empties it;
// when that fails it keeps it for the conclusion's transaction (losing it is
// logged, not fatal: the idempotency replay still stands behind it).
func (ex *executor) checkpoint(ctx context.Context) {
	if err := ex.d.WriteJournal(ctx, ex.journal); err != nil {
		ex.log.WarnContext(ctx, "could not record the write's attempts and links yet; they are written with its conclusion", "err", err)
		return
	}
	ex.journal = store.Journal{}
}

func searchPath(res sagewrite.Resource, ref string) string {
	return "/" + res.Collection + "?" + url.Values{"search": {ref}}.Encode()
}
