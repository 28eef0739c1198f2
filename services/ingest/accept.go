package ingest

import (
	"context"
	"errors"
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

// inbound is one Magento outbox row as a transport hands it over: the HTTP
// webhook (POST /webhooks/magento/{tenant}/{event}) or a relay's message on
// the INGEST stream (ledger.ingest.<tenant>.<event>). Both go through accept,
// so a row is verified, validated, deduplicated and recorded the same way
// whichever way it came.
type inbound struct {
	Tenant, Event string
	// Header holds Authorization (the shop's HS256 token), Idempotency-Key,
	// Content-Type and Content-Encoding, as on the webhook.
	Header http.Header
	// Body reads the envelope; it is called only once the token and the
	// headers are accepted. An *http.MaxBytesError means too large.
	Body func() ([]byte, error)
	// VerifyAt is the time the token is checked against: now for a webhook,
	// the time the INGEST stream stored a relayed message (a redelivery
	// after an outage is the same message, not a late one).
	VerifyAt time.Time
	// ReplayOwner, when set, names the message that carries the token (the
	// INGEST stream sequence): its own redelivery is not a replay.
	ReplayOwner string
}

// transport names where d came from, for logs: "http" or "nats".
func (d inbound) transport() string {
	if d.ReplayOwner != "" {
		return "nats"
	}
	return "http"
}

// verdict is what accept decided, in the webhook's terms: Status is the HTTP
// status the shop gets (202, 400, 401, 413, 415 or 503), Outcome the
// outcome label, Err the cause of a refusal: *authError (401), *headerError
// (400, 415), *EnvelopeError (400), *http.MaxBytesError (413) or
// *unavailableError (503; overloaded when Outcome says so).
type verdict struct {
	Status  int
	Outcome string
	RunID   string
	Err     error
}

// Permanent reports whether the same delivery can never succeed: every
// refusal but a 503.
func (v verdict) Permanent() bool { return v.Err != nil && v.Status != http.StatusServiceUnavailable }

// accept is the one path of a Magento outbox row into Ledger: the tenant and
// the token (§3.4: HS256 under the tenant's outbound subkey, sub = tenant,
// jti used once), the headers, the envelope, then the sync run
// (store.AcceptWebhook: a repeated Idempotency-Key of a consumed live run is a
// duplicate; one of a pending run is published again, which JetStream stores
// once within its duplicate window) and the OutboxEvent on OUTBOX (waiting for
// its PubAck). ctx bounds the database and NATS work.
func (s *Service) accept(ctx context.Context, d inbound) verdict {
	if store.ValidTenantID(d.Tenant) != nil {
		return verdict{Status: http.StatusUnauthorized, Outcome: outcomeUnauthorized,
			Err: &authError{Reason: "unknown tenant: the tenant segment is not a valid tenant id"}}
	}
	if _, err := s.authenticate(ctx, d.Header, d.Tenant, d.VerifyAt, d.ReplayOwner); err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			if ae.drift {
				// The paired shop signing with another key? (drift.go)
				s.refusedAsDrift(ctx, d.Tenant, ae.Reason, s.now())
			}
			return verdict{Status: http.StatusUnauthorized, Outcome: outcomeUnauthorized, Err: err}
		}
		return verdict{Status: http.StatusServiceUnavailable, Outcome: outcomeUnavailable, Err: err}
	}
	if !s.tenants.acquire(d.Tenant) {
		return verdict{Status: http.StatusServiceUnavailable, Outcome: outcomeOverloaded,
			Err: &unavailableError{"too many deliveries of this tenant in progress", errOverloaded}}
	}
	defer s.tenants.release(d.Tenant)
	if he := checkWebhookHeaders(d.Header); he != nil {
		return verdict{Status: he.Code, Outcome: outcomeRejected, Err: he}
	}
	body, err := d.Body()
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return verdict{Status: http.StatusRequestEntityTooLarge, Outcome: outcomeTooLarge, Err: err}
		}
		// A body cut short or too slow is the network's fault: retry.
		return verdict{Status: http.StatusServiceUnavailable, Outcome: outcomeUnavailable,
			Err: &unavailableError{"could not read the request body", err}}
	}
	key := d.Header.Get("Idempotency-Key")
	env, err := validateWebhook(key, d.Event, body)
	if err != nil {
		var ee *EnvelopeError
		if !errors.As(err, &ee) {
			ee = &EnvelopeError{Message: err.Error()}
		}
		return verdict{Status: http.StatusBadRequest, Outcome: outcomeRejected, Err: ee}
	}
	tenant, event := d.Tenant, d.Event

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
		return verdict{Status: http.StatusServiceUnavailable, Outcome: outcomeUnavailable,
			Err: &unavailableError{"database unavailable", err}}
	}
	telemetry.Annotate(ctx, telemetry.AttrRunID.String(acc.RunID), attribute.Bool("ledger.duplicate", acc.Duplicate))
	// The shop is alive, whether or not this is a repeat (activity.go).
	s.activity.saw(tenant, s.now())
	if acc.Duplicate {
		s.log.InfoContext(ctx, "ingest: webhook is a repeat of a live run; nothing published",
			"transport", d.transport(), "tenant", tenant, "event", event, "idempotency_key", key, "sync_run_id", acc.RunID)
		return verdict{Status: http.StatusAccepted, Outcome: outcomeDuplicate, RunID: acc.RunID}
	}

	// The event travels in the delivery's trace (the shop's, when it sent a
	// traceparent); bus.Publish fills its traceparent.
	evt := &ledgerv1.OutboxEvent{
		TenantId: tenant, Event: event, IdempotencyKey: key, SyncRunId: acc.RunID,
		MagentoEntityId: env.MagentoEntityID, WebsiteId: env.WebsiteID, StoreId: env.StoreID,
		OccurredAt: env.OccurredAt, Payload: env.Payload,
		ReceivedAt: timestamppb.New(s.now()),
	}
	start := time.Now()
	ack, err := bus.Publish(ctx, s.js, bus.OutboxSubject(tenant, event), evt, MsgID(tenant, key, acc.RunID))
	result := "ok"
	if err != nil {
		result = "error"
	}
	s.metrics.publish.WithLabelValues(result).Observe(time.Since(start).Seconds())
	if err != nil {
		// The run stays pending; the retry gets the same run id back from
		// AcceptWebhook and publishes it again.
		return verdict{Status: http.StatusServiceUnavailable, Outcome: outcomeUnavailable,
			Err: &unavailableError{"event stream unavailable", err}}
	}
	if ack.Duplicate {
		// A repeat of a pending run whose event JetStream already holds
		// (it keeps one copy of a Nats-Msg-Id within bus.DedupeWindow).
		s.log.InfoContext(ctx, "ingest: webhook is a repeat of a pending run; JetStream kept its one copy",
			"transport", d.transport(), "tenant", tenant, "event", event, "idempotency_key", key, "sync_run_id", acc.RunID)
		return verdict{Status: http.StatusAccepted, Outcome: outcomeDuplicate, RunID: acc.RunID}
	}
	s.log.InfoContext(ctx, "ingest: webhook accepted", "tenant", tenant, "event", event, "transport", d.transport(),
		"idempotency_key", key, "sync_run_id", acc.RunID)
	return verdict{Status: http.StatusAccepted, Outcome: outcomeAccepted, RunID: acc.RunID}
}

// errOverloaded is the cause of an overloaded verdict.
var errOverloaded = errors.New("tenant over INGEST_TENANT_MAX_IN_FLIGHT")
