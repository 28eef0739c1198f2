package mapper

import (
	"encoding/json"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// canonicalJSON is the documents fetched for the run as one JSON object keyed
// "<kind>/<id>" (nil when nothing was fetched).
func (j *job) canonicalJSON() []byte {
	if len(j.fetched) == 0 {
		return nil
	}
	docs := make(map[string]json.RawMessage, len(j.fetched))
	for _, d := range j.fetched {
		if json.Valid(d.raw) {
			docs[d.key] = d.raw
		}
	}
	out, err := json.Marshal(docs)
	if err != nil {
		return nil
	}
	return out
}

// sageRequestJSON renders a SageWrite for the run page: its operations with
// each body as the JSON Sage receives (nil for no write). Bodies hold no
// secrets: credentials are added by the sage-writer's client.
func sageRequestJSON(w *ledgerv1.SageWrite) []byte {
	if w == nil {
		return nil
	}
	type op struct {
		Operation json.RawMessage `json:"operation"`
		Body      json.RawMessage `json:"body,omitempty"`
	}
	doc := struct {
		EntityType    string   `json:"entity_type"`
		AppliedQuirks []string `json:"applied_quirks,omitempty"`
		Operations    []op     `json:"operations"`
	}{EntityType: w.GetEntityType(), AppliedQuirks: w.GetAppliedQuirks()}
	m := protojson.MarshalOptions{UseProtoNames: true}
	for _, o := range w.GetOperations() {
		meta := proto.CloneOf(o)
		meta.Body = nil
		b, err := m.Marshal(meta)
		if err != nil {
			return nil
		}
		e := op{Operation: b}
		if json.Valid(o.GetBody()) {
			e.Body = o.GetBody()
		}
		doc.Operations = append(doc.Operations, e)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil
	}
	return out
}
