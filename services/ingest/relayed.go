package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ledgersync/ledger/libs/backoff"
	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/magento"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// The INGEST consumer: outbox rows a relay publishes to
// ledger.ingest.<tenant>.<event> (docs/relay.md) go through accept exactly as
// a webhook does; only the transport differs.
const (
	// RelayDurable is the durable consumer every ingest replica shares on INGEST.
	RelayDurable = "ingest"
	// StageIngest names ingest's dead letters (ledger.dlq.ingest.<tenant>.<entity>).
	StageIngest = stageIngest
	// RelayMaxDeliver is how often a relayed row that keeps failing
	// transiently (database or NATS away) is delivered before it is
	// dead-lettered: at one try a minute once backed off, about a week.
	RelayMaxDeliver = 10_000
	// relayWorkers is how many relayed rows one replica handles at once (each
	// also counts against INGEST_TENANT_MAX_IN_FLIGHT).
	relayWorkers = 4
)

// Dead-letter codes of relayed rows (the webhook answers these with 401 and
// 400/413/415; a relay has nobody to answer, so the row goes to DLQ).
const (
	CodeRelayUnauthorized   = "relay_unauthorized"    // the token does not prove the subject's tenant
	CodeRelayMessageInvalid = "relay_message_invalid" // subject, headers or envelope can never be accepted
	CodeRelayUnavailable    = "relay_unavailable"     // database or NATS away: retried, dead-lettered only after RelayMaxDeliver
)

// relayRetry paces the redelivery of a row that failed transiently.
var relayRetry = backoff.Policy{Base: time.Second, Cap: time.Minute, Jitter: 0.2}

// RelaySpec is the consumer ingest runs on the INGEST stream.
func (s *Service) RelaySpec() bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream: bus.StreamIngest, Durable: RelayDurable, FilterSubjects: []string{bus.IngestAll},
		Stage: StageIngest, Workers: relayWorkers, MaxDeliver: RelayMaxDeliver, Metrics: s.metrics.bus,
		WorkTimeout: s.cfg.RequestTimeout,
	}
}

// RunRelayed consumes INGEST until ctx ends.
func (s *Service) RunRelayed(ctx context.Context) error {
	s.relayRunning.Store(true)
	defer s.relayRunning.Store(false)
	s.log.Info("ingest: consuming relayed rows", "stream", bus.StreamIngest, "durable", RelayDurable)
	if err := bus.Consume(ctx, s.js, s.RelaySpec(), s.log, s.HandleRelayed); err != nil {
		return fmt.Errorf("ingest: consuming %s: %w", bus.StreamIngest, err)
	}
	return nil
}

// RelayConsuming is the readiness of the INGEST consumer.
func (s *Service) RelayConsuming(context.Context) error {
	if !s.relayRunning.Load() {
		return errors.New("not consuming INGEST yet")
	}
	return nil
}

// HandleRelayed accepts one relayed row: the tenant and event from the
// subject, the token from Authorization, the Idempotency-Key (or, without it,
// the Nats-Msg-Id), the envelope from the data. The token is checked as of
// the time the stream stored the message, so a row redelivered after an
// outage is not refused as expired, and its own redelivery is not a replay.
// A row that can never be accepted is dead-lettered with its reason; a
// transient failure is redelivered with back-off.
func (s *Service) HandleRelayed(ctx context.Context, msg jetstream.Msg) bus.Outcome {
	meta, err := msg.Metadata()
	if err != nil {
		return s.relayRefused(ctx, msg, "", "", verdict{Status: http.StatusBadRequest, Outcome: outcomeRejected,
			Err: &EnvelopeError{Message: "the message has no JetStream metadata: " + err.Error()}})
	}
	subj, err := bus.ParseSubject(msg.Subject())
	if err != nil || subj.Stream != bus.StreamIngest {
		return s.relayRefused(ctx, msg, "", "", verdict{Status: http.StatusBadRequest, Outcome: outcomeRejected,
			Err: &EnvelopeError{Field: "subject", Message: fmt.Sprintf("%q is not ledger.ingest.<tenant>.<event>", msg.Subject())}})
	}
	h, herr := relayHeader(subj.Tenant, msg.Headers())
	if herr != nil {
		return s.relayRefused(ctx, msg, subj.Tenant, subj.Entity, verdict{Status: http.StatusBadRequest, Outcome: outcomeRejected, Err: herr})
	}
	data := msg.Data()
	v := s.accept(ctx, inbound{Tenant: subj.Tenant, Event: subj.Entity, Header: h,
		Body: func() ([]byte, error) {
			if int64(len(data)) > s.cfg.MaxBodyBytes {
				return nil, &http.MaxBytesError{Limit: s.cfg.MaxBodyBytes}
			}
			return data, nil
		},
		VerifyAt:    meta.Timestamp,
		ReplayOwner: fmt.Sprintf("%s:%d", bus.StreamIngest, meta.Sequence.Stream),
	})
	if v.Err == nil {
		s.metrics.relayed.WithLabelValues(v.Outcome, statusLabel(v.Status)).Inc()
		return bus.Done()
	}
	if v.Permanent() {
		return s.relayRefused(ctx, msg, subj.Tenant, subj.Entity, v)
	}
	s.metrics.relayed.WithLabelValues(v.Outcome, statusLabel(v.Status)).Inc()
	s.log.WarnContext(ctx, "ingest: relayed row failed transiently; redelivering", "tenant", subj.Tenant, "event", subj.Entity,
		"idempotency_key", h.Get("Idempotency-Key"), "delivered", meta.NumDelivered, "err", v.Err)
	return bus.Outcome{Verdict: bus.Retry, Delay: relayRetry.Delay(meta.NumDelivered),
		Class: "internal", Code: CodeRelayUnavailable, Message: v.Err.Error(), HTTPStatus: v.Status,
		TenantID: subj.Tenant, Entity: magento.EntityType(subj.Entity)}
}

// relayRefused dead-letters a row that can never be accepted, with the reason
// the webhook would have answered.
func (s *Service) relayRefused(ctx context.Context, msg jetstream.Msg, tenant, event string, v verdict) bus.Outcome {
	s.metrics.relayed.WithLabelValues(v.Outcome, statusLabel(v.Status)).Inc()
	out := bus.Outcome{Verdict: bus.DeadLetter, Class: "validation", Code: CodeRelayMessageInvalid,
		Message: v.Err.Error(), HTTPStatus: v.Status, TenantID: tenant, Entity: magento.EntityType(event)}
	var ae *authError
	if errors.As(v.Err, &ae) {
		out.Class, out.Code, out.Message = "auth", CodeRelayUnauthorized, ae.Reason
	}
	// The shop sees the refusal as it would the webhook's answer: its relay
	// marks the row dead_lettered with this status and message. Until the
	// SHOP stream has it, the row is retried rather than dead-lettered here.
	if key := rowKey(tenant, msg.Headers()); tenant != "" && key != "" {
		status := int32(v.Status)
		if ae != nil {
			status = http.StatusUnauthorized
		}
		refused := &ledgerv1.RefusedRow{TenantId: tenant, IdempotencyKey: key, StatusCode: status,
			Error: out.Message, Code: out.Code, RefusedAt: timestamppb.Now()}
		if _, err := bus.Publish(ctx, s.js, bus.ShopSubject(tenant, bus.ShopRefused), refused, "refused:"+tenant+":"+key); err != nil {
			s.log.WarnContext(ctx, "ingest: could not tell the shop its row was refused; retrying", "tenant", tenant, "err", err)
			return bus.Outcome{Verdict: bus.Retry, Delay: relayRetry.Delay(1), Class: "internal", Code: CodeRelayUnavailable,
				Message: "telling the shop its row was refused: " + err.Error(), TenantID: tenant, Entity: magento.EntityType(event)}
		}
	}
	s.log.WarnContext(ctx, "ingest: relayed row refused; dead-lettered", "tenant", tenant, "event", event,
		"subject", msg.Subject(), "code", out.Code, "reason", out.Message)
	return out
}

// rowKey is a relayed row's Idempotency-Key (or the key in its Nats-Msg-Id),
// "" when it has neither.
func rowKey(tenant string, h nats.Header) string {
	if k := h.Get("Idempotency-Key"); k != "" {
		return k
	}
	k, _ := strings.CutPrefix(h.Get(nats.MsgIdHdr), tenant+":")
	return k
}

// relayHeader turns a relayed message's NATS headers into the webhook's
// (canonical keys). Nats-Msg-Id is <tenant>:<key> (bus.RelayMsgID): without an
// Idempotency-Key the key is taken from it; with both they must agree.
func relayHeader(tenant string, nh nats.Header) (http.Header, error) {
	h := make(http.Header, len(nh)+1)
	for k, vs := range nh {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		h[ck] = append(h[ck], vs...)
	}
	id := nh.Get(nats.MsgIdHdr)
	if id == "" {
		return h, nil
	}
	key, scoped := strings.CutPrefix(id, tenant+":")
	switch keys := h.Values("Idempotency-Key"); {
	case !scoped || key == "":
		return nil, &EnvelopeError{Field: nats.MsgIdHdr, Message: fmt.Sprintf(
			"%q is not %s:<idempotency_key>: JetStream deduplicates Nats-Msg-Id across the whole INGEST stream, so a bare key would drop another shop's row with the same key; publish with Nats-Msg-Id = <tenant>:<idempotency_key>", id, tenant)}
	case len(keys) == 0:
		h.Set("Idempotency-Key", key)
	case len(keys) == 1 && keys[0] != key:
		return nil, &EnvelopeError{Field: nats.MsgIdHdr, Message: fmt.Sprintf("%q differs from %s:<Idempotency-Key>; publish the row with Nats-Msg-Id = <tenant>:<idempotency_key>", id, tenant)}
	}
	return h, nil
}
