package sagewrite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"strings"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// What an operation did to its Sage document (Result.Changes), and what a
// whole write did (Result.Change).
const (
	ChangeCreated   = "created"   // the document was created (POST)
	ChangeUpdated   = "updated"   // the known document was changed (PUT)
	ChangeUnchanged = "unchanged" // the known document was left as it is: no call
)

// createOnly lists, per resource, the fields Sage does not change after
// creation, which an update never sends: a contact's currency (quirk 31: one
// currency per contact, locked once it has transactions) and its reference
// (Ledger's key to find it again; a soft-deleted contact keeps it reserved),
// and a product's catalog item type (stock or non-stock: Sage's UI does not
// convert one into the other [I]). A product's or service's item_code is not
// among them: Ledger links products by Magento id, so a renamed SKU follows.
var createOnly = map[ledgerv1.SageResource][]string{
	ledgerv1.SageResource_SAGE_RESOURCE_CONTACT: {"currency_id", "reference"},
	ledgerv1.SageResource_SAGE_RESOURCE_PRODUCT: {"catalog_item_type_id"},
}

// CreateOnlyFields returns the top-level fields of r that an update never
// sends.
func CreateOnlyFields(r ledgerv1.SageResource) []string { return createOnly[r] }

// Known is an operation's document as the Executor knows it.
type Known struct {
	ID string
	// Digest is the digest of the body Ledger last wrote to the document
	// (Request.Digest), "" when unknown: a link made before digests were
	// kept or by an operator's relink. An unknown digest differs from every
	// body, so the next update sends the document once and records it.
	Digest string
	// Created: this run created the document in an earlier delivery whose
	// answer was lost, and the lookup that resolves such a create found it.
	Created bool
}

// Updater is an Executor that can also bring a known document up to date.
// Execute uses it for operations in mode SAGE_WRITE_MODE_CREATE_OR_UPDATE;
// with an Executor that is not an Updater they are create-only.
type Updater interface {
	Executor
	// Known is Existing with what Execute needs besides the id.
	Known(ctx context.Context, op *ledgerv1.SageOperation) (doc Known, ok bool, err error)
	// Update sends req (PlanUpdate's PUT) to the known document doc and
	// records req.Digest as the body last written to it.
	Update(ctx context.Context, op *ledgerv1.SageOperation, doc Known, req Request) error
}

// Result is what Execute did: the Sage id of each operation that has one, and
// what each operation did to its document, by key.
type Result struct {
	IDs     map[string]string
	Changes map[string]string
}

// Change is what the write did as a whole: ChangeCreated when any operation
// created a document, else ChangeUpdated when any updated one, else
// ChangeUnchanged (no document was written).
func (r Result) Change() string {
	change := ChangeUnchanged
	for _, c := range r.Changes {
		switch c {
		case ChangeCreated:
			return ChangeCreated
		case ChangeUpdated:
			change = ChangeUpdated
		}
	}
	return change
}

// Execute is Run, with what it did to each document, and with updates: an
// operation in mode SAGE_WRITE_MODE_CREATE_OR_UPDATE whose document ex
// already knows (ex must be an Updater) is sent again with PUT when
// PlanUpdate's body has another digest than the one last written, and makes
// no call when it has the same. A document created by such an operation is
// recorded with the digest of its update body (Request.Digest), so sending the
// same details again later changes nothing.
func Execute(ctx context.Context, w *ledgerv1.SageWrite, ex Executor) (Result, error) {
	t := &tracker{Executor: ex, runID: w.GetSyncRunId(), ids: map[string]string{}, changes: map[string]string{}}
	t.up, _ = ex.(Updater)
	ids, err := Run(ctx, w, t)
	return Result{IDs: ids, Changes: t.changes}, err
}

// tracker is the Executor Execute gives Run: it updates known documents and
// notes what each operation did. Every other method of the caller's Executor
// passes through.
type tracker struct {
	Executor
	up      Updater // nil: the caller's Executor cannot update
	runID   string
	ids     map[string]string // the id of each operation so far, for PlanUpdate's bindings
	changes map[string]string
}

// Existing answers for a known document, after updating it when its operation
// may and its body changed.
func (t *tracker) Existing(ctx context.Context, op *ledgerv1.SageOperation) (string, bool, error) {
	if t.up == nil {
		id, ok, err := t.Executor.Existing(ctx, op)
		if err == nil && ok {
			t.done(op, id, ChangeUnchanged)
		}
		return id, ok, err
	}
	doc, ok, err := t.up.Known(ctx, op)
	switch {
	case err != nil || !ok:
		return "", false, err
	case doc.Created:
		// Its digest stays unknown: the next update sends it once.
		t.done(op, doc.ID, ChangeCreated)
		return doc.ID, true, nil
	case op.GetMode() != ledgerv1.SageWriteMode_SAGE_WRITE_MODE_CREATE_OR_UPDATE:
		t.done(op, doc.ID, ChangeUnchanged)
		return doc.ID, true, nil
	}
	req, err := PlanUpdate(op, t.ids, t.runID)
	if err != nil {
		return "", false, err
	}
	if req.Digest == doc.Digest {
		t.done(op, doc.ID, ChangeUnchanged)
		return doc.ID, true, nil
	}
	if err := t.up.Update(ctx, op, doc, req); err != nil {
		return "", false, err
	}
	t.done(op, doc.ID, ChangeUpdated)
	return doc.ID, true, nil
}

// Create creates the document; one whose operation may update it later
// carries the digest of its update body for the Executor to record.
func (t *tracker) Create(ctx context.Context, op *ledgerv1.SageOperation, req Request) (string, error) {
	if op.GetMode() == ledgerv1.SageWriteMode_SAGE_WRITE_MODE_CREATE_OR_UPDATE {
		var err error
		if req.Digest, err = digest(op.GetKey(), updateFields(op, req)); err != nil {
			return "", err
		}
	}
	id, err := t.Executor.Create(ctx, op, req)
	if err == nil {
		t.done(op, id, ChangeCreated)
	}
	return id, err
}

func (t *tracker) done(op *ledgerv1.SageOperation, id, change string) {
	t.ids[op.GetKey()] = id
	t.changes[op.GetKey()] = change
}

// PlanUpdate builds the PUT of op's known document: Plan's body without the
// resource's create-only fields (CreateOnlyFields), with Digest set to the
// digest of that body, and an idempotency_id of its own (UpdateIdempotencyID:
// op's create id would make Sage replay the create's answer for 7 days and
// change nothing).
func PlanUpdate(op *ledgerv1.SageOperation, ids map[string]string, runID string) (Request, error) {
	req, err := Plan(op, ids)
	if err != nil {
		return Request{}, err
	}
	req.Fields = updateFields(op, req)
	if req.Digest, err = digest(op.GetKey(), req.Fields); err != nil {
		return Request{}, err
	}
	if id := op.GetIdempotencyId(); id != "" {
		req.Fields["idempotency_id"] = UpdateIdempotencyID(id, runID, req.Digest)
	}
	req.Update = true
	return req, nil
}

// updateFields is req's body as an update sends it: without idempotency_id
// and the create-only fields of op's resource.
func updateFields(op *ledgerv1.SageOperation, req Request) map[string]any {
	out := maps.Clone(req.Fields)
	delete(out, "idempotency_id")
	for _, f := range createOnly[op.GetResource()] {
		delete(out, f)
	}
	return out
}

// digest is the hex SHA-256 of fields as canonical JSON: object keys sorted
// (encoding/json sorts map keys), numbers as their exact text (json.Number),
// so the same body always has the same digest.
func digest(key string, fields map[string]any) (string, error) {
	b, err := json.Marshal(fields)
	if err != nil {
		return "", invalid(key, "operation %q: %v", key, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// UpdateIdempotencyID is the idempotency_id of the PUT that writes the body
// with digest in run runID, derived from the operation's own id: the first 32
// hex characters of SHA-256 over "update"|id|run|digest. A redelivery of the
// run sends the same PUT, which Sage replays; a later run sends a new one, so
// a body put back to what it was a few days ago is applied, not replayed.
func UpdateIdempotencyID(id, runID, digest string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{"update", id, runID, digest}, "|")))
	return hex.EncodeToString(sum[:])[:32]
}
