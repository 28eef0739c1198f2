package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
)

// acceptedBody is the 202 answer; the module's publishEvent reads sync_run_id.
type acceptedBody struct {
	SyncRunID string `json:"sync_run_id"`
}

// MsgID is the Nats-Msg-Id of an accepted delivery: tenant, Idempotency-Key
// and sync run id. See the package documentation for why the run id is in it.
func MsgID(tenant, idempotencyKey, runID string) string {
	return tenant + ":" + idempotencyKey + ":" + runID
}

// webhook serves POST /webhooks/magento/{tenant}/{event}.
func (s *Service) webhook(w http.ResponseWriter, r *http.Request, tenant, event string) {
	start := time.Now()
	code, outcome := s.acceptWebhook(w, r, tenant, event)
	s.metrics.webhooks.WithLabelValues(outcome, statusLabel(code)).Inc()
	s.metrics.stage.WithLabelValues(stageIngest).Observe(time.Since(start).Seconds())
	// accepted, duplicate, unauthorized, rejected, too_large, unavailable: the
	// server span's status is Error only for the 5xx ones.
	telemetry.Annotate(r.Context(), telemetry.AttrOutcome.String(outcome))
}

func (s *Service) acceptWebhook(w http.ResponseWriter, r *http.Request, tenant, event string) (int, string) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.tooLarge(w)
		return http.StatusRequestEntityTooLarge, outcomeTooLarge
	}
	// The shop waits 15 s. The work gets RequestTimeout and is not cut short
	// when the client hangs up, so a delivery is either fully accepted or
	// left for the shop's retry to finish; never half-published by accident.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.RequestTimeout)
	defer cancel()
	v := s.accept(ctx, inbound{Tenant: tenant, Event: event, Header: r.Header,
		Body:     func() ([]byte, error) { return io.ReadAll(r.Body) }, // limited to MaxBodyBytes by serve
		VerifyAt: s.now()})
	s.answer(w, r, tenant, event, v)
	return v.Status, v.Outcome
}

// answer writes accept's verdict as the webhook's HTTP answer, logging a
// refusal's reason.
func (s *Service) answer(w http.ResponseWriter, r *http.Request, tenant, event string, v verdict) {
	var (
		he *headerError
		ee *EnvelopeError
	)
	switch {
	case v.Err == nil:
		writeJSON(w, http.StatusAccepted, acceptedBody{SyncRunID: v.RunID})
	case v.Outcome == outcomeOverloaded:
		s.overloaded(w, r, tenant)
	case v.Status == http.StatusRequestEntityTooLarge:
		s.tooLarge(w)
	case errors.As(v.Err, &he):
		s.writeHeaderError(w, r, tenant, event, he)
	case errors.As(v.Err, &ee):
		s.log.WarnContext(r.Context(), "ingest: webhook rejected", "tenant", tenant, "event", event, "field", ee.Field, "reason", ee.Message)
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", Message: ee.Error(), Field: ee.Field})
	default:
		if v.Status == http.StatusUnauthorized && store.ValidTenantID(tenant) != nil {
			tenant = ""
		}
		s.writeFailure(w, r, tenant, v.Err)
	}
}

// validateWebhook checks what makes a delivery deterministically unacceptable
// (a 400 that dead-letters the row): the Idempotency-Key header, the event
// name and the envelope.
func validateWebhook(key, event string, body []byte) (Envelope, error) {
	if err := validIdempotencyKey(key); err != nil {
		return Envelope{}, err
	}
	if err := validEvent(event); err != nil {
		return Envelope{}, err
	}
	return DecodeEnvelope(body)
}

func (s *Service) tooLarge(w http.ResponseWriter) {
	writeError(w, http.StatusRequestEntityTooLarge, "payload_too_large",
		fmt.Sprintf("the body is larger than %d bytes; a Byte8 envelope is a small JSON object with ids, not a document", s.cfg.MaxBodyBytes))
}
