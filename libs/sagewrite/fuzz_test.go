package sagewrite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/money"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// creator is an Executor that knows no document and creates each one with
// the id "id-<key>", recording the requests.
type creator struct{ reqs []Request }

func (c *creator) Existing(context.Context, *ledgerv1.SageOperation) (string, bool, error) {
	return "", false, nil
}

func (c *creator) Create(_ context.Context, op *ledgerv1.SageOperation, req Request) (string, error) {
	c.reqs = append(c.reqs, req)
	return "id-" + op.GetKey(), nil
}

// Outstanding: every document has more outstanding than any receipt pays.
func (c *creator) Outstanding(context.Context, Resource, string) (money.Amount, error) {
	return money.MustParse("1000000000000"), nil
}

// FuzzRun decodes arbitrary bytes as the SageWrite a writer reads from the
// SAGE stream and runs it. A write that fails is refused for itself (an
// *OpError whose cause is an *InvalidError): the executor never fails. Every
// request sent is for the operation's resource, its body (as sent) is one
// JSON object that is the operation's body with idempotency_id and each bound
// id at its path, and the ids returned are those created.
func FuzzRun(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var w ledgerv1.SageWrite
		if err := proto.Unmarshal(data, &w); err != nil {
			return
		}
		ex := &creator{}
		ids, err := Run(context.Background(), &w, ex)
		if err != nil {
			var oe *OpError
			var ie *InvalidError
			if !errors.As(err, &oe) || !errors.As(err, &ie) || ie.Key != oe.Op.GetKey() || ie.Error() == "" {
				t.Fatalf("Run failed with %v (%T), not an *OpError caused by an *InvalidError", err, err)
			}
		}
		if len(ex.reqs) > len(w.GetOperations()) {
			t.Fatalf("%d requests for %d operations", len(ex.reqs), len(w.GetOperations()))
		}
		for i, req := range ex.reqs {
			op := w.GetOperations()[i]
			if ids[op.GetKey()] == "" && err == nil {
				t.Fatalf("operation %q created but no id returned", op.GetKey())
			}
			if res, ok := ResourceOf(op.GetResource()); !ok || res != req.Resource {
				t.Fatalf("operation %q (%s) sent to %+v", op.GetKey(), op.GetResource(), req.Resource)
			}
			checkRequest(t, op, req)
		}
	})
}

// checkRequest checks one request against its operation.
func checkRequest(t *testing.T, op *ledgerv1.SageOperation, req Request) {
	t.Helper()
	if body := op.GetBody(); len(body) > 0 && !json.Valid(body) {
		t.Fatalf("operation %q: the body %q is not JSON, yet it was sent", op.GetKey(), body)
	}
	raw, err := req.JSON()
	if err != nil {
		t.Fatalf("operation %q: planned but cannot be encoded: %v", op.GetKey(), err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var sent map[string]any
	if err := dec.Decode(&sent); err != nil || sent == nil {
		t.Fatalf("operation %q: sends %s, not a JSON object", op.GetKey(), raw)
	}
	if id := op.GetIdempotencyId(); id != "" && sent["idempotency_id"] != id {
		t.Fatalf("operation %q: idempotency_id %v, want %q", op.GetKey(), sent["idempotency_id"], id)
	}
	// The last binding of a path wins, as in Plan.
	bound := map[string]string{}
	for _, b := range op.GetBindings() {
		bound[b.GetField()] = "id-" + b.GetFromKey()
	}
	for path, want := range bound {
		if got, ok := at(sent, path); !ok || got != want {
			// A later binding may have replaced a whole object on the way.
			if !shadowed(path, bound) {
				t.Fatalf("operation %q: %s is %v in %s, want %q", op.GetKey(), path, got, raw, want)
			}
		}
	}
}

// at reads the value at a dotted path of keys and array indexes.
func at(v any, path string) (any, bool) {
	for seg := range strings.SplitSeq(path, ".") {
		switch node := v.(type) {
		case map[string]any:
			v = node[seg]
		case []any:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(node) {
				return nil, false
			}
			v = node[n]
		default:
			return nil, false
		}
	}
	return v, true
}

// shadowed reports whether another bound path is a prefix of path (so it
// replaced the object path lives in) or path is a prefix of it.
func shadowed(path string, bound map[string]string) bool {
	for p := range bound {
		if p != path && (strings.HasPrefix(path, p+".") || strings.HasPrefix(p, path+".")) {
			return true
		}
	}
	return false
}
