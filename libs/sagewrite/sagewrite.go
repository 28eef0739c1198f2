package sagewrite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/ledgersync/ledger/libs/money"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Resource is where an operation's document lives in Sage.
type Resource struct {
	Collection string // under /v3.1, without the slash: "sales_invoices"
	RootKey    string // the request body's root key: "sales_invoice"
}

// resources maps each SageResource to its collection and root key.
var resources = map[ledgerv1.SageResource]Resource{
	ledgerv1.SageResource_SAGE_RESOURCE_CONTACT:            {"contacts", "contact"},
	ledgerv1.SageResource_SAGE_RESOURCE_SALES_INVOICE:      {"sales_invoices", "sales_invoice"},
	ledgerv1.SageResource_SAGE_RESOURCE_SALES_CREDIT_NOTE:  {"sales_credit_notes", "sales_credit_note"},
	ledgerv1.SageResource_SAGE_RESOURCE_CONTACT_PAYMENT:    {"contact_payments", "contact_payment"},
	ledgerv1.SageResource_SAGE_RESOURCE_CONTACT_ALLOCATION: {"contact_allocations", "contact_allocation"},
	ledgerv1.SageResource_SAGE_RESOURCE_PRODUCT:            {"products", "product"},
	ledgerv1.SageResource_SAGE_RESOURCE_SERVICE:            {"services", "service"},
}

// ResourceOf returns where documents of r live; false for an unspecified or
// unknown resource.
func ResourceOf(r ledgerv1.SageResource) (Resource, bool) {
	res, ok := resources[r]
	return res, ok
}

// resourceOf is ResourceOf of op's resource, an *InvalidError when unknown.
func resourceOf(op *ledgerv1.SageOperation) (Resource, error) {
	res, ok := ResourceOf(op.GetResource())
	if !ok {
		return Resource{}, invalid(op.GetKey(), "operation %q has no known Sage resource (%s)", op.GetKey(), op.GetResource())
	}
	return res, nil
}

// InvalidError is a write that can never be executed as sent: an unknown
// resource, a body that is not a JSON object, or a binding to no earlier
// operation or to a path the body cannot hold. Retrying cannot help.
type InvalidError struct {
	Key string // the operation's key
	msg string
}

// Error names the operation and what is wrong with it.
func (e *InvalidError) Error() string { return e.msg }

func invalid(key, format string, args ...any) *InvalidError {
	return &InvalidError{Key: key, msg: fmt.Sprintf(format, args...)}
}

// Request is one operation's create, ready to send.
type Request struct {
	Key      string // the operation's key
	Resource Resource
	// Fields is the body: the operation's JSON object with idempotency_id and
	// the bound ids set. Numbers are json.Number, keeping their exact text.
	Fields map[string]any
	// Update: a PUT of the known document (PlanUpdate), not a create.
	Update bool
	// Digest, for an operation that may update its document, is the digest
	// of the body an update sends (update.go): what the Executor records as
	// the body last written. "" for create-only operations.
	Digest string
}

// JSON is the body as sent; the client wraps it in Resource.RootKey.
func (r Request) JSON() (json.RawMessage, error) {
	out, err := json.Marshal(r.Fields)
	if err != nil {
		return nil, invalid(r.Key, "operation %q: %v", r.Key, err)
	}
	return out, nil
}

// Plan builds op's request. ids holds the Sage id of each earlier operation of
// the write by key; every binding of op must name one of them.
func Plan(op *ledgerv1.SageOperation, ids map[string]string) (Request, error) {
	key := op.GetKey()
	res, err := resourceOf(op)
	if err != nil {
		return Request{}, err
	}
	obj := map[string]any{}
	if raw := op.GetBody(); len(raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil || obj == nil {
			return Request{}, invalid(key, "operation %q: body is not a JSON object", key)
		}
		// Whatever follows the object would be dropped silently.
		if _, err := dec.Token(); err != io.EOF {
			return Request{}, invalid(key, "operation %q: body has text after its JSON object", key)
		}
	}
	if id := op.GetIdempotencyId(); id != "" {
		obj["idempotency_id"] = id
	}
	for _, b := range op.GetBindings() {
		id, ok := ids[b.GetFromKey()]
		if !ok {
			return Request{}, invalid(key, "operation %q binds %q to %q, which is not an earlier operation of the write",
				key, b.GetField(), b.GetFromKey())
		}
		if err := setPath(obj, b.GetField(), id); err != nil {
			return Request{}, invalid(key, "operation %q binds %q: %v", key, b.GetField(), err)
		}
	}
	return Request{Key: key, Resource: res, Fields: obj}, nil
}

// setPath sets v at a dotted path inside obj ("contact_id",
// "allocated_artefacts.0.artefact_id"). A segment inside an object is a key,
// and a missing or null object on the way is created; a segment inside an
// array is an index that must exist, because inventing array elements would
// change what the body says.
func setPath(obj map[string]any, path string, v string) error {
	segs := strings.Split(path, ".")
	if slices.Contains(segs, "") {
		return fmt.Errorf("field path %q has an empty segment", path)
	}
	var cur any = obj
	for i, seg := range segs {
		last := i == len(segs)-1
		at := strings.Join(segs[:i], ".")
		switch node := cur.(type) {
		case map[string]any:
			if last {
				node[seg] = v
				return nil
			}
			next, ok := node[seg]
			if !ok || next == nil {
				next = map[string]any{}
				node[seg] = next
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(node) {
				return fmt.Errorf("%q is not an index of the %d-element array %q", seg, len(node), at)
			}
			if last {
				node[n] = v
				return nil
			}
			cur = node[n]
		default:
			return fmt.Errorf("%q is %s, not an object or array, so it has no %q", at, describe(node), seg)
		}
	}
	return nil
}

// describe names the kind of a decoded JSON value for an error message.
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("a %T", v)
}

// Executor does the I/O of Run against one Sage business.
type Executor interface {
	// Existing returns the Sage id of op's document when it is already
	// known (entity_xref), so Run neither plans nor creates it.
	Existing(ctx context.Context, op *ledgerv1.SageOperation) (id string, ok bool, err error)
	// Create makes op's document in Sage from req and returns its id.
	Create(ctx context.Context, op *ledgerv1.SageOperation, req Request) (id string, err error)
	// Outstanding returns what the document id of res has outstanding now
	// (its outstanding_amount), for a receipt that settles it.
	Outstanding(ctx context.Context, res Resource, id string) (money.Amount, error)
}

// OpError is the failure of one operation of a write.
type OpError struct {
	Op  *ledgerv1.SageOperation
	Err error
}

// Error names the operation and the cause.
func (e *OpError) Error() string { return fmt.Sprintf("operation %q: %v", e.Op.GetKey(), e.Err) }

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// Run executes w's operations in order: for each, the document ex already
// knows, or else the one ex creates from the operation's Plan, whose bindings
// see the ids of every operation before it. It returns the Sage id of each
// operation that got one, by key, and stops at the first failure, which is an
// *OpError (its cause an *InvalidError when the write itself is at fault).
//
// A receipt that settles an earlier operation's document (settles_key) pays
// at most what that document has outstanding when the receipt is created;
// with nothing outstanding it is not created and has no id.
func Run(ctx context.Context, w *ledgerv1.SageWrite, ex Executor) (map[string]string, error) {
	ids := map[string]string{}
	done := map[string]*ledgerv1.SageOperation{}
	for _, op := range w.GetOperations() {
		id, err := step(ctx, op, ids, done, ex)
		if err != nil {
			return ids, &OpError{Op: op, Err: err}
		}
		done[op.GetKey()] = op
		if id != "" {
			ids[op.GetKey()] = id
		}
	}
	return ids, nil
}

// step runs one operation: an unknown resource is refused before anything is
// looked up. done holds the earlier operations by key.
func step(ctx context.Context, op *ledgerv1.SageOperation, ids map[string]string, done map[string]*ledgerv1.SageOperation, ex Executor) (string, error) {
	if _, err := resourceOf(op); err != nil {
		return "", err
	}
	if id, ok, err := ex.Existing(ctx, op); err != nil || ok {
		return id, err
	}
	req, err := Plan(op, ids)
	if err != nil {
		return "", err
	}
	if key := op.GetSettlesKey(); key != "" {
		settled, ok := done[key]
		if !ok || ids[key] == "" {
			return "", invalid(op.GetKey(), "operation %q settles %q, which is not an earlier operation of the write with a document", op.GetKey(), key)
		}
		res, err := resourceOf(settled)
		if err != nil {
			return "", err
		}
		due, err := ex.Outstanding(ctx, res, ids[key])
		if err != nil {
			return "", err
		}
		if due.Sign() <= 0 {
			return "", nil // settled already: nothing to receive
		}
		if err := req.capTo(due); err != nil {
			return "", err
		}
	}
	return ex.Create(ctx, op, req)
}

// capTo lowers the receipt's total_amount and its first allocation to due
// when they are above it.
func (r Request) capTo(due money.Amount) error {
	// Sage takes amounts as JSON numbers or strings; the lowered one keeps
	// the form it was sent in.
	lower := func(obj map[string]any, field, at string) error {
		var text string
		switch v := obj[field].(type) {
		case json.Number:
			text = v.String()
		case string:
			text = v
		default:
			return invalid(r.Key, "operation %q settles a document but %s is not an amount", r.Key, at)
		}
		a, err := money.Parse(text)
		if err != nil {
			return invalid(r.Key, "operation %q: %s %q: %v", r.Key, at, text, err)
		}
		if a.Cmp(due) <= 0 {
			return nil
		}
		if _, isString := obj[field].(string); isString {
			obj[field] = due.Cents().String()
		} else {
			obj[field] = json.Number(due.Cents().String())
		}
		return nil
	}
	if err := lower(r.Fields, "total_amount", "total_amount"); err != nil {
		return err
	}
	var first map[string]any
	if arts, _ := r.Fields["allocated_artefacts"].([]any); len(arts) > 0 {
		first, _ = arts[0].(map[string]any)
	}
	if first == nil {
		return invalid(r.Key, "operation %q settles a document but has no allocated_artefacts[0] object", r.Key)
	}
	return lower(first, "amount", "allocated_artefacts.0.amount")
}
