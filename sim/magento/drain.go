package magentosim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ledgersync/ledger/libs/magento"
)

// transientExhausted is OutboxDrain::DEAD_LETTER_REASON_TRANSIENT_EXHAUSTED.
const transientExhausted = "transient_exhausted: retries capped at MAX_TRANSIENT_ATTEMPTS without success"

// DrainOnce is one run of the byte8_outbox_drain cron (wire §1.4): when connected
// and not down, it takes up to BatchSize due pending rows in entity_id order and
// POSTs each one with a fresh outbound JWT, then classifies the answer. It returns
// how many rows it attempted. Concurrent calls are serialised.
func (s *Shop) DrainOnce(ctx context.Context) int {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()

	s.mu.Lock()
	if !s.connectedLocked() || s.down {
		s.mu.Unlock()
		return 0
	}
	now := s.now()
	var batch []int64
	for _, r := range s.outbox {
		if r.Status == StatusPending && (r.NextAttemptAt == nil || !r.NextAttemptAt.After(now)) {
			batch = append(batch, r.EntityID)
			if len(batch) == BatchSize {
				break
			}
		}
	}
	s.mu.Unlock()

	attempted := 0
	for _, id := range batch {
		if ctx.Err() != nil {
			break
		}
		ok, err := s.processRow(ctx, id)
		if ok {
			attempted++
		}
		if err != nil {
			s.log.Error("Byte8 outbox drain: row crashed", "entity_id", id, "err", err)
		}
	}
	return attempted
}

// attempt is what one POST produced.
type attempt struct {
	status int    // 0 for a network error
	body   []byte // response body
	msg    string // transient message
}

// processRow reports whether a POST was made.
func (s *Shop) processRow(ctx context.Context, id int64) (bool, error) {
	s.mu.Lock()
	row := s.rowLocked(id)
	if row == nil || row.Status != StatusPending {
		s.mu.Unlock()
		return false, nil
	}
	if !s.connectedLocked() || s.baseURL == "" {
		// NotConnectedException mid-run: the row is left untouched.
		s.mu.Unlock()
		s.log.Warn("Byte8 outbox drain: client not connected, deferring batch")
		return false, nil
	}
	tenant, key, base := s.tenantID, s.apiKey, s.baseURL
	payload, idemKey, event := row.Payload, row.IdempotencyKey, row.EventName
	s.mu.Unlock()

	target := webhookURL(base, tenant, event)
	now := s.now()
	res := s.post(ctx, target, key, tenant, []byte(payload), idemKey)

	s.mu.Lock()
	defer s.mu.Unlock()
	row = s.rowLocked(id)
	if row == nil {
		return true, errRowGone
	}
	at := now
	row.LastAttemptAt = &at
	switch {
	case res.status >= 200 && res.status < 300:
		code := res.status
		row.Status = StatusSucceeded
		row.Attempts++
		row.LastStatusCode = &code
		row.NextAttemptAt = nil
		row.LastError = nil
	case res.status >= 400 && res.status < 500:
		code := res.status
		body := string(res.body)
		if len(body) > 8192 {
			body = body[:8192] + "…[truncated]"
		}
		msg := fmt.Sprintf("HTTP %d: %s", code, body)
		s.deadLetterLocked(row, &code, msg)
	default:
		n := row.Attempts + 1
		if n >= MaxTransientAttempts {
			s.deadLetterLocked(row, nil, transientExhausted+" — last error: "+res.msg)
			break
		}
		delay := s.cfg.Backoff[min(n, len(s.cfg.Backoff))-1]
		next := now.Add(delay)
		msg := res.msg
		row.Status = StatusPending
		row.Attempts = n
		row.LastStatusCode = nil
		row.NextAttemptAt = &next
		row.LastError = &msg
		s.log.Info("Byte8 outbox drain: transient failure", "entity_id", id, "attempts", n, "next_attempt_at", next, "error", msg)
	}
	return true, nil
}

func (s *Shop) deadLetterLocked(row *OutboxRow, code *int, msg string) {
	row.Status = StatusDeadLettered
	row.Attempts++
	row.LastStatusCode = code
	row.NextAttemptAt = nil
	row.LastError = &msg
	status := "transient_exhausted"
	if code != nil {
		status = fmt.Sprint(*code)
	}
	logged := msg
	if len(logged) > 500 {
		logged = logged[:500] + "…"
	}
	s.log.Error("Byte8 outbox drain: dead-lettered event — requires operator review",
		"entity_id", row.EntityID, "event", row.EventName, "status", status, "error", logged)
}

func (s *Shop) rowLocked(id int64) *OutboxRow {
	for _, r := range s.outbox {
		if r.EntityID == id {
			return r
		}
	}
	return nil
}

// webhookURL is OutboxDrain::webhookUrl: plain concatenation with rawurlencode.
func webhookURL(base, tenant, event string) string {
	return strings.TrimRight(base, "/") + "/webhooks/magento/" + rawURLEncode(tenant) + "/" + rawURLEncode(event)
}

// rawURLEncode is PHP's rawurlencode (RFC 3986: only A-Za-z0-9 -_.~ stay).
func rawURLEncode(s string) string {
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&15])
	}
	return b.String()
}

// post is ByteClient::post + dispatchResponse for one URL: a fresh token, the
// three headers, and no redirects. A status of 0 means a network error.
func (s *Shop) post(ctx context.Context, target, apiKey, tenant string, body []byte, idemKey string) attempt {
	tok, err := magento.MintOutbound(apiKey, tenant, s.cfg.Now())
	if err != nil {
		return attempt{msg: fmt.Sprintf("Network error publishing to Byte8 (%s): %s", target, err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return attempt{msg: fmt.Sprintf("Network error publishing to Byte8 (%s): %s", target, err)}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idemKey)
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return attempt{msg: fmt.Sprintf("Network error publishing to Byte8 (%s): %s", target, err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return attempt{msg: fmt.Sprintf("Network error publishing to Byte8 (%s): %s", target, err)}
	}
	a := attempt{status: resp.StatusCode, body: raw}
	if resp.StatusCode < 200 || resp.StatusCode >= 500 || (resp.StatusCode >= 300 && resp.StatusCode < 400) {
		a.msg = fmt.Sprintf("Byte8 returned HTTP %d from %s; will retry.", resp.StatusCode, target)
	}
	return a
}
