package magentosim

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// OutboxStatus is byte8_event_outbox.status.
type OutboxStatus string

// The three statuses of an outbox row (wire §1.1).
const (
	StatusPending      OutboxStatus = "pending"
	StatusDeadLettered OutboxStatus = "dead_lettered"
	StatusSucceeded    OutboxStatus = "succeeded"
)

// OutboxRow is one row of byte8_event_outbox (wire §1.1). Nullable columns are
// pointers; times are UTC with whole seconds.
type OutboxRow struct {
	EntityID       int64        `json:"entity_id"`
	IdempotencyKey string       `json:"idempotency_key"`
	EventName      string       `json:"event_name"`
	Payload        string       `json:"payload"`
	Status         OutboxStatus `json:"status"`
	Attempts       int          `json:"attempts"`
	LastStatusCode *int         `json:"last_status_code"`
	LastAttemptAt  *time.Time   `json:"last_attempt_at"`
	NextAttemptAt  *time.Time   `json:"next_attempt_at"`
	LastError      *string      `json:"last_error"`
	CreatedAt      time.Time    `json:"created_at"`
}

func (r *OutboxRow) clone() OutboxRow {
	c := *r
	if r.LastStatusCode != nil {
		v := *r.LastStatusCode
		c.LastStatusCode = &v
	}
	if r.LastAttemptAt != nil {
		v := *r.LastAttemptAt
		c.LastAttemptAt = &v
	}
	if r.NextAttemptAt != nil {
		v := *r.NextAttemptAt
		c.NextAttemptAt = &v
	}
	if r.LastError != nil {
		v := *r.LastError
		c.LastError = &v
	}
	return c
}

// OutboxCounts counts outbox rows by status.
type OutboxCounts struct {
	Pending      int `json:"pending"`
	DeadLettered int `json:"dead_lettered"`
	Succeeded    int `json:"succeeded"`
}

// Total is the number of rows.
func (c OutboxCounts) Total() int { return c.Pending + c.DeadLettered + c.Succeeded }

// Event is one ByteClient::enqueueEvent call. The envelope is built in the PHP key
// order magento_entity_id, website_id, store_id, occurred_at, payload; occurred_at
// is the enqueue time.
type Event struct {
	// Name is the event name, e.g. "invoice.created".
	Name string
	// IdempotencyKey is the caller's key; "" derives "{name}:" + sha1_hex(body).
	IdempotencyKey string
	// MagentoEntityID, WebsiteID and StoreID are the envelope's ints.
	MagentoEntityID, WebsiteID, StoreID int64
	// Payload is the nested payload, marshalled with encoding/json and then
	// re-escaped the way PHP's json_encode does. Use a struct to control key order
	// (maps sort their keys); nil means an empty object {}.
	Payload any
	// MirrorProvider, when set, writes a pending row into byte8_entity_sync_state
	// for invoice./creditmemo./customer./product. events (wire §1.2).
	MirrorProvider string
}

type envelope struct {
	MagentoEntityID int64           `json:"magento_entity_id"`
	WebsiteID       int64           `json:"website_id"`
	StoreID         int64           `json:"store_id"`
	OccurredAt      string          `json:"occurred_at"`
	Payload         json.RawMessage `json:"payload"`
}

// Enqueue is ByteClient::enqueueEvent: it stores the exact body that the drain will
// POST, ignores the call when a row with the same idempotency key exists whatever
// its status, and mirrors a pending sync state. It returns ErrNotConnected when
// tenant_id or base_url is not configured.
func (s *Shop) Enqueue(e Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.enqueueLocked(e)
	return err
}

// enqueueLocked returns whether a row was inserted.
func (s *Shop) enqueueLocked(e Event) (bool, error) {
	if s.tenantID == "" || s.baseURL == "" {
		return false, ErrNotConnected
	}
	now := s.now()
	body, err := encodeEnvelope(e, now)
	if err != nil {
		return false, err
	}
	key := e.IdempotencyKey
	if key == "" {
		sum := sha1.Sum([]byte(body))
		key = e.Name + ":" + hex.EncodeToString(sum[:])
	}
	inserted := false
	if _, dup := s.outboxByKey[key]; !dup {
		s.nextOutboxID++
		empty := ""
		row := &OutboxRow{
			EntityID: s.nextOutboxID, IdempotencyKey: key, EventName: e.Name, Payload: body,
			Status: StatusPending, LastError: &empty, CreatedAt: now,
		}
		s.outbox = append(s.outbox, row)
		s.outboxByKey[key] = row
		inserted = true
		s.log.Debug("outbox enqueue", "event", e.Name, "idempotency_key", key, "entity_id", row.EntityID)
	}
	if e.MirrorProvider != "" {
		if et := entityTypeFromEvent(e.Name); et != "" && e.MagentoEntityID > 0 {
			s.markPendingLocked(et, e.MagentoEntityID, e.MirrorProvider, now)
		}
	}
	return inserted, nil
}

func entityTypeFromEvent(name string) string {
	prefix, _, _ := strings.Cut(name, ".")
	switch prefix {
	case "invoice", "creditmemo", "customer", "product":
		return prefix
	}
	return ""
}

// occurredAtLayout is gmdate('Y-m-d\TH:i:s\Z').
const occurredAtLayout = "2006-01-02T15:04:05Z"

func encodeEnvelope(e Event, now time.Time) (string, error) {
	var payload json.RawMessage = []byte("{}")
	if e.Payload != nil {
		b, err := marshalNoHTML(e.Payload)
		if err != nil {
			return "", fmt.Errorf("magentosim: event %s payload: %w", e.Name, err)
		}
		payload = b
	}
	b, err := marshalNoHTML(envelope{
		MagentoEntityID: e.MagentoEntityID, WebsiteID: e.WebsiteID, StoreID: e.StoreID,
		OccurredAt: now.UTC().Format(occurredAtLayout), Payload: payload,
	})
	if err != nil {
		return "", err
	}
	return string(phpEscape(b, false)), nil
}

func marshalNoHTML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// phpEscape rewrites Go JSON (encoded without HTML escaping) the way PHP's
// json_encode writes it: every non-ASCII character becomes a lowercase \uXXXX
// escape (UTF-16 surrogate pairs above U+FFFF) and, unless JSON_UNESCAPED_SLASHES
// is in effect (escapeSlashes false), "/" becomes "\/". Outside strings JSON has
// neither, so the rewrite is safe on whole documents.
func phpEscape(b []byte, escapeSlashes bool) []byte {
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 0, len(b)+16)
	u := func(r rune) {
		out = append(out, '\\', 'u', hexdigits[r>>12&0xf], hexdigits[r>>8&0xf], hexdigits[r>>4&0xf], hexdigits[r&0xf])
	}
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c == '/' && escapeSlashes {
				out = append(out, '\\', '/')
			} else {
				out = append(out, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		i += size
		if r > 0xffff {
			r -= 0x10000
			u(0xd800 + (r >> 10))
			u(0xdc00 + (r & 0x3ff))
		} else {
			u(r)
		}
	}
	return out
}

// Outbox returns a copy of every outbox row ordered by entity_id.
func (s *Shop) Outbox() []OutboxRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]OutboxRow, 0, len(s.outbox))
	for _, r := range s.outbox {
		out = append(out, r.clone())
	}
	return out
}

// OutboxRowByKey returns the row with the given idempotency key.
func (s *Shop) OutboxRowByKey(key string) (OutboxRow, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.outboxByKey[key]
	if !ok {
		return OutboxRow{}, false
	}
	return r.clone(), true
}

// OutboxCounts counts the outbox rows by status.
func (s *Shop) OutboxCounts() OutboxCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c OutboxCounts
	for _, r := range s.outbox {
		switch r.Status {
		case StatusPending:
			c.Pending++
		case StatusDeadLettered:
			c.DeadLettered++
		case StatusSucceeded:
			c.Succeeded++
		}
	}
	return c
}

// RequeueError is a refusal of Requeue, with the CLI's message (wire §1.6).
type RequeueError struct {
	ID     int64
	Status OutboxStatus // "" when the row does not exist
}

// Error returns the CLI's message.
func (e *RequeueError) Error() string {
	if e.Status == "" {
		return fmt.Sprintf("Outbox row %d not found.", e.ID)
	}
	return fmt.Sprintf("Outbox row %d is status=%s (not dead_lettered) — nothing to do.", e.ID, e.Status)
}

// Is makes errors.Is(err, ErrNotFound) true for a missing row.
func (e *RequeueError) Is(target error) bool { return target == ErrNotFound && e.Status == "" }

// Requeue is `byte8:sage:outbox:requeue --id`: a dead-lettered row goes back to
// pending with attempts 0 and next_attempt_at NULL, keeping last_status_code,
// last_error and last_attempt_at. Other rows are refused with a *RequeueError.
func (s *Shop) Requeue(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.outbox {
		if r.EntityID != id {
			continue
		}
		if r.Status != StatusDeadLettered {
			return &RequeueError{ID: id, Status: r.Status}
		}
		requeue(r)
		return nil
	}
	return &RequeueError{ID: id}
}

func requeue(r *OutboxRow) {
	r.Status = StatusPending
	r.Attempts = 0
	r.NextAttemptAt = nil
}

// RequeueAll is `requeue --all`: it flips every dead-lettered row back to pending
// and returns how many it flipped.
func (s *Shop) RequeueAll() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.outbox {
		if r.Status == StatusDeadLettered {
			requeue(r)
			n++
		}
	}
	return n
}

// GC is the byte8_outbox_gc cron and `outbox:cleanup`: it deletes succeeded rows
// whose COALESCE(last_attempt_at, created_at) is older than olderThan (30 days in
// the real cron) and returns how many it deleted. Pending and dead-lettered rows
// are never deleted.
func (s *Shop) GC(olderThan time.Duration) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := s.now().Add(-olderThan)
	kept := s.outbox[:0]
	n := 0
	for _, r := range s.outbox {
		at := r.CreatedAt
		if r.LastAttemptAt != nil {
			at = *r.LastAttemptAt
		}
		if r.Status == StatusSucceeded && at.Before(cutoff) {
			delete(s.outboxByKey, r.IdempotencyKey)
			n++
			continue
		}
		kept = append(kept, r)
	}
	clear(s.outbox[len(kept):])
	s.outbox = kept
	return n
}

var errRowGone = errors.New("outbox row deleted while in flight")
