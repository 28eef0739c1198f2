package ingest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ledgersync/ledger/libs/devstack/devtest"
	"github.com/ledgersync/ledger/services/ingest"
)

// TestStorableAgainstPostgres posts envelopes whose payload or occurred_at
// PostgreSQL cannot store (found by FuzzWebhookHandler: they were answered
// 503, so the shop retried them for days) and the largest values it can:
// the first are a 400 naming the field, the others are accepted and stored.
// It also pins the rules fuzzStore models on a real server.
func TestStorableAgainstPostgres(t *testing.T) {
	t.Parallel()
	f := newFixture(t, devtest.NATS(t), ingest.Config{})
	refused := map[string]string{
		`{"magento_entity_id":1,"payload":{"a":"\u0000"}}`:                      "payload",
		`{"magento_entity_id":1,"payload":{"\u0000":1}}`:                        "payload",
		`{"magento_entity_id":1,"occurred_at":"x\u0000y"}`:                      "occurred_at",
		"{\"magento_entity_id\":1,\"payload\":{\"a\":\"\xff\"}}":                "payload",
		`{"magento_entity_id":1,"payload":{"n":1e200000}}`:                      "payload",
		`{"magento_entity_id":1,"payload":{"n":1e-20000}}`:                      "payload",
		`{"magento_entity_id":1,"payload":{"n":1E+1001}}`:                       "payload",
		`{"magento_entity_id":1,"payload":"\ud800"}`:                            "payload",
		`{"magento_entity_id":1,"payload":"\udc00\ud800"}`:                      "payload",
		`{"magento_entity_id":1,"payload":[` + strings.Repeat("1", 1001) + `]}`: "payload",
	}
	i := 0
	for body, field := range refused {
		i++
		r := f.webhook(t, "t1", "invoice.created", fmt.Sprint("invoice.created:refused-", i), token(t), body)
		wantCode(t, r, http.StatusBadRequest)
		if got := r.json(t)["field"]; got != field {
			t.Errorf("%q: field %v, want %s", body, got, field)
		}
	}
	for i, body := range []string{
		`{"magento_entity_id":1,"payload":{"n":-1e1000,"m":1e-1000,"o":` + strings.Repeat("9", 1000) + `}}`,
		`{"magento_entity_id":1,"payload":"\ud83d\ude00 \uD83D\uDE00 \\u0000 \"\\\\ \ufffd"}`,
		`{"magento_entity_id":1,"occurred_at":"\ud800","payload":[]}`,
	} {
		r := f.webhook(t, "t1", "invoice.created", fmt.Sprint("invoice.created:stored-", i), token(t), body)
		wantCode(t, r, http.StatusAccepted)
	}
}
