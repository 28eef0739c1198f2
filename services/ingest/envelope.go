package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"unicode/utf8"
)

// Envelope is the part of a webhook body ingest forwards. The shop sends
// {"magento_entity_id":42,"website_id":1,"store_id":1,"occurred_at":"…","payload":{…}};
// unknown keys are ignored so a newer module keeps working.
type Envelope struct {
	MagentoEntityID int64
	WebsiteID       int64
	StoreID         int64
	// OccurredAt is kept exactly as sent (the shop's enqueue time).
	OccurredAt string
	// Payload is the "payload" value verbatim; nil when absent or null. PHP's
	// json_encode writes an empty payload as [] rather than {}, so any JSON
	// value is accepted.
	Payload json.RawMessage
}

// EnvelopeError names the field of a body that cannot be accepted. It is a
// deterministic rejection: the same body can never succeed, so it is a 400.
type EnvelopeError struct {
	Field   string // "" when the body as a whole is wrong
	Message string
}

func (e *EnvelopeError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// DecodeEnvelope decodes a webhook body. The body must be one JSON object
// whose magento_entity_id is an integer ≥ 0; website_id and store_id, when
// present and not null, must be integers, occurred_at a string. Errors are
// *EnvelopeError.
func DecodeEnvelope(body []byte) (Envelope, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return Envelope{}, &EnvelopeError{Message: "the body must be one JSON object, e.g. {\"magento_entity_id\":42,\"payload\":{}}"}
	}
	var env Envelope
	id, present, err := integerField(fields, "magento_entity_id")
	switch {
	case err != nil:
		return Envelope{}, err
	case !present:
		return Envelope{}, &EnvelopeError{"magento_entity_id", "is required: the Magento id of the entity the event is about"}
	case id < 0:
		return Envelope{}, &EnvelopeError{"magento_entity_id", fmt.Sprintf("must be 0 or more, got %d", id)}
	}
	env.MagentoEntityID = id
	if env.WebsiteID, _, err = integerField(fields, "website_id"); err != nil {
		return Envelope{}, err
	}
	if env.StoreID, _, err = integerField(fields, "store_id"); err != nil {
		return Envelope{}, err
	}
	if raw, ok := fields["occurred_at"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &env.OccurredAt); err != nil {
			return Envelope{}, &EnvelopeError{"occurred_at", "must be a string such as \"2026-04-29T10:11:12Z\""}
		}
	}
	if raw, ok := fields["payload"]; ok && !isNull(raw) {
		env.Payload = append(json.RawMessage(nil), bytes.TrimSpace(raw)...)
	}
	return env, nil
}

// integerField reads an optional integer field; null counts as absent.
func integerField(fields map[string]json.RawMessage, name string) (int64, bool, error) {
	raw, ok := fields[name]
	if !ok || isNull(raw) {
		return 0, false, nil
	}
	var n json.Number
	// json.Number also takes a quoted "42"; the module sends JSON integers.
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] == '"' || json.Unmarshal(raw, &n) != nil {
		return 0, true, &EnvelopeError{name, "must be an integer, got " + describe(raw)}
	}
	v, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		return 0, true, &EnvelopeError{name, "must be an integer that fits in 64 bits, got " + describe(raw)}
	}
	return v, true, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// describe quotes a short excerpt of a raw value for an error message.
func describe(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 40 {
		cut := 40
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

var eventPattern = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)+$`)

// maxEventLen is the shop's event_name column width (varchar(64)).
const maxEventLen = 64

// validEvent checks an event name such as invoice.created.
func validEvent(event string) error {
	if len(event) > maxEventLen || !eventPattern.MatchString(event) {
		return &EnvelopeError{"event", fmt.Sprintf("the URL's event name must be lowercase dot-separated words of a-z, 0-9 and _ (at most %d characters), e.g. invoice.created", maxEventLen)}
	}
	return nil
}

// maxKeyLen is the shop's idempotency_key column width (varchar(128)).
const maxKeyLen = 128

// validIdempotencyKey checks the Idempotency-Key header.
func validIdempotencyKey(key string) error {
	switch {
	case key == "":
		return &EnvelopeError{"Idempotency-Key", "header is required: send the outbox row's key, e.g. Idempotency-Key: invoice.created:42"}
	case utf8.RuneCountInString(key) > maxKeyLen:
		return &EnvelopeError{"Idempotency-Key", fmt.Sprintf("header is longer than %d characters", maxKeyLen)}
	case !utf8.ValidString(key):
		return &EnvelopeError{"Idempotency-Key", "header is not valid UTF-8"}
	}
	return nil
}
