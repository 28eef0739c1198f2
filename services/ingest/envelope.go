package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
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

// DecodeEnvelope decodes a webhook body. The body must be one JSON object,
// nested at most 64 levels, with no key twice in one object, whose
// magento_entity_id is an integer ≥ 0; website_id and store_id, when present
// and not null, must be integers ≥ 0, occurred_at a string. Errors are
// *EnvelopeError.
func DecodeEnvelope(body []byte) (Envelope, error) {
	if tooDeep(body, maxNesting) {
		return Envelope{}, &EnvelopeError{Message: fmt.Sprintf("the body is nested more than %d levels deep; an envelope is a flat object with a small payload", maxNesting)}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return Envelope{}, &EnvelopeError{Message: "the body must be one JSON object, e.g. {\"magento_entity_id\":42,\"payload\":{}}"}
	}
	if err := checkStructure(body); err != nil {
		return Envelope{}, err
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
	if env.WebsiteID < 0 {
		return Envelope{}, &EnvelopeError{"website_id", fmt.Sprintf("must be 0 or more, got %d", env.WebsiteID)}
	}
	if env.StoreID < 0 {
		return Envelope{}, &EnvelopeError{"store_id", fmt.Sprintf("must be 0 or more, got %d", env.StoreID)}
	}
	if raw, ok := fields["occurred_at"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &env.OccurredAt); err != nil {
			return Envelope{}, &EnvelopeError{"occurred_at", "must be a string such as \"2026-04-29T10:11:12Z\""}
		}
		if strings.ContainsRune(env.OccurredAt, 0) {
			return Envelope{}, &EnvelopeError{"occurred_at", "must not contain a NUL character"}
		}
	}
	if raw, ok := fields["payload"]; ok && !isNull(raw) {
		raw = bytes.TrimSpace(raw)
		if err := storable(raw); err != nil {
			return Envelope{}, &EnvelopeError{"payload", err.Error()}
		}
		env.Payload = append(json.RawMessage(nil), raw...)
	}
	return env, nil
}

// Bounds of a payload number, well inside PostgreSQL's numeric type (131072
// digits before the point, 16383 after), which jsonb uses.
const (
	maxNumberLen      = 1000
	maxNumberExponent = 1000
)

// storable checks what PostgreSQL's jsonb refuses in a payload that is
// otherwise valid JSON: invalid UTF-8, a \u0000 escape, a lone UTF-16
// surrogate escape and a number beyond its numeric range. The run keeps the
// payload, and a payload the database refuses would be answered 503 and
// retried by the shop for days, though it can never succeed: it is a 400.
// raw must be valid JSON.
func storable(raw []byte) error {
	if !utf8.Valid(raw) {
		return errors.New("is not valid UTF-8")
	}
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inString && c == '\\':
			if raw[i+1] != 'u' {
				i++
				continue
			}
			r, _ := strconv.ParseUint(string(raw[i+2:i+6]), 16, 32)
			i += 5
			switch {
			case r == 0:
				return errors.New("contains \\u0000, which cannot be stored")
			case r >= 0xDC00 && r <= 0xDFFF:
				return errors.New("contains an unpaired UTF-16 surrogate escape")
			case r >= 0xD800 && r <= 0xDBFF:
				next := raw[i+1:]
				if len(next) < 6 || next[0] != '\\' || next[1] != 'u' {
					return errors.New("contains an unpaired UTF-16 surrogate escape")
				}
				if lo, err := strconv.ParseUint(string(next[2:6]), 16, 32); err != nil || lo < 0xDC00 || lo > 0xDFFF {
					return errors.New("contains an unpaired UTF-16 surrogate escape")
				}
				i += 6
			}
		case c == '"':
			inString = !inString
		case !inString && (c == '-' || c >= '0' && c <= '9'):
			end := i
			for end < len(raw) && bytes.IndexByte([]byte("+-.0123456789eE"), raw[end]) >= 0 {
				end++
			}
			if err := storableNumber(string(raw[i:end])); err != nil {
				return err
			}
			i = end - 1
		}
	}
	return nil
}

// storableNumber bounds a JSON number's length and exponent.
func storableNumber(n string) error {
	if len(n) > maxNumberLen {
		return fmt.Errorf("has a number of %d characters; at most %d", len(n), maxNumberLen)
	}
	if i := strings.IndexAny(n, "eE"); i >= 0 {
		if e, err := strconv.Atoi(n[i+1:]); err != nil || e > maxNumberExponent || e < -maxNumberExponent {
			return fmt.Errorf("has the number %s, whose exponent is beyond ±%d", describe(json.RawMessage(n)), maxNumberExponent)
		}
	}
	return nil
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
	if bytes.ContainsAny(raw, ".eE") {
		return 0, true, &EnvelopeError{name, "must be an integer, without a fraction or an exponent, got " + describe(raw)}
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
	case strings.ContainsFunc(key, unicode.IsControl):
		// HTTP forbids them in a header value; the key also travels in a
		// NATS header and a PostgreSQL text column, which refuse some.
		return &EnvelopeError{"Idempotency-Key", "header contains a control character"}
	}
	return nil
}
