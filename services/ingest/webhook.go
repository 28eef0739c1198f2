package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
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
	if store.ValidTenantID(tenant) != nil {
		s.writeFailure(w, r, "", &authError{"", "unknown tenant: the URL's tenant segment is not a valid tenant id"})
		return http.StatusUnauthorized, outcomeUnauthorized
	}
	// The shop waits 15 s. The work gets RequestTimeout and is not cut short
	// when the client hangs up, so a delivery is either fully accepted or
	// left for the shop's retry to finish; never half-published by accident.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.RequestTimeout)
	defer cancel()

	if _, err := s.authenticate(ctx, r, tenant); err != nil {
		s.writeFailure(w, r, tenant, err)
		if errors.As(err, new(*authError)) {
			return http.StatusUnauthorized, outcomeUnauthorized
		}
		return http.StatusServiceUnavailable, outcomeUnavailable
	}
	if !s.tenants.acquire(tenant) {
		s.overloaded(w, r, tenant)
		return http.StatusServiceUnavailable, outcomeOverloaded
	}
	defer s.tenants.release(tenant)
	if he := checkWebhookHeaders(r.Header); he != nil {
		s.writeHeaderError(w, r, tenant, event, he)
		return he.Code, outcomeRejected
	}

	body, err := io.ReadAll(r.Body) // limited to MaxBodyBytes by serve
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			s.tooLarge(w)
			return http.StatusRequestEntityTooLarge, outcomeTooLarge
		}
		// A body cut short or too slow is the network's fault: retry.
		s.unavailable(w, r, tenant, &unavailableError{"could not read the request body", err})
		return http.StatusServiceUnavailable, outcomeUnavailable
	}
	key := r.Header.Get("Idempotency-Key")
	env, err := validateWebhook(key, event, body)
	if err != nil {
		var ee *EnvelopeError
		if !errors.As(err, &ee) {
			ee = &EnvelopeError{Message: err.Error()}
		}
		s.log.WarnContext(r.Context(), "ingest: webhook rejected", "tenant", tenant, "event", event, "field", ee.Field, "reason", ee.Message)
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", Message: ee.Error(), Field: ee.Field})
		return http.StatusBadRequest, outcomeRejected
	}

	telemetry.Annotate(ctx, telemetry.AttrTenant.String(tenant), telemetry.AttrEvent.String(event),
		telemetry.AttrEntityType.String(magento.EntityType(event)), telemetry.AttrMagentoEntityID.Int64(env.MagentoEntityID))
	// The run keeps the trace of the request that delivered it: the dashboard
	// links to it and an operator's retry links its own trace to it.
	acc, err := s.st.AcceptWebhook(ctx, store.Delivery{
		TenantID: tenant, IdempotencyKey: key, Event: event,
		EntityType: magento.EntityType(event), MagentoEntityID: env.MagentoEntityID,
		WebsiteID: env.WebsiteID, StoreID: env.StoreID, OccurredAt: env.OccurredAt, Payload: env.Payload,
		TraceID: telemetry.TraceID(ctx), SpanID: telemetry.SpanID(ctx),
	}, s.cfg.DedupWindow)
	if err != nil {
		s.unavailable(w, r, tenant, &unavailableError{"database unavailable", err})
		return http.StatusServiceUnavailable, outcomeUnavailable
	}
	telemetry.Annotate(ctx, telemetry.AttrRunID.String(acc.RunID), attribute.Bool("ledger.duplicate", acc.Duplicate))
	if acc.Duplicate {
		s.log.InfoContext(r.Context(), "ingest: webhook is a repeat of a live run; nothing published",
			"tenant", tenant, "event", event, "idempotency_key", key, "sync_run_id", acc.RunID)
		writeJSON(w, http.StatusAccepted, acceptedBody{SyncRunID: acc.RunID})
		return http.StatusAccepted, outcomeDuplicate
	}

	// The event travels in the request's trace (the shop's, when it sent a
	// traceparent); bus.Publish fills its traceparent.
	evt := &ledgerv1.OutboxEvent{
		TenantId: tenant, Event: event, IdempotencyKey: key, SyncRunId: acc.RunID,
		MagentoEntityId: env.MagentoEntityID, WebsiteId: env.WebsiteID, StoreId: env.StoreID,
		OccurredAt: env.OccurredAt, Payload: env.Payload,
		ReceivedAt: timestamppb.New(s.now()),
	}
	start := time.Now()
	_, err = bus.Publish(ctx, s.js, bus.OutboxSubject(tenant, event), evt, MsgID(tenant, key, acc.RunID))
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.metrics.publish.WithLabelValues(result).Observe(time.Since(start).Seconds())
	if err != nil {
		// The run stays unpublished; the shop's retry gets the same run id
		// back from AcceptWebhook and publishes it again.
		s.unavailable(w, r, tenant, &unavailableError{"event stream unavailable", err})
		return http.StatusServiceUnavailable, outcomeUnavailable
	}
	if err := s.st.MarkPublished(ctx, tenant, key, acc.RunID); err != nil {
		// The event is in JetStream, but the key is not marked: the retry
		// (60 s later, inside the 2 min dedupe window) publishes the same
		// Nats-Msg-Id, which JetStream stores once, then marks it.
		s.unavailable(w, r, tenant, &unavailableError{"database unavailable", err})
		return http.StatusServiceUnavailable, outcomeUnavailable
	}
	s.log.InfoContext(r.Context(), "ingest: webhook accepted", "tenant", tenant, "event", event,
		"idempotency_key", key, "sync_run_id", acc.RunID)
	writeJSON(w, http.StatusAccepted, acceptedBody{SyncRunID: acc.RunID})
	return http.StatusAccepted, outcomeAccepted
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
