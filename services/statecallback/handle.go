package statecallback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Stable error codes of statecallback's dead letters.
const (
	CodeUndecodable       = "result_undecodable"
	CodeNoStatus          = "result_without_status"
	CodeBadRunID          = "result_bad_run_id"
	CodeRejected          = "sync_state_rejected"
	CodeNotSaved          = "sync_state_not_saved" // the "Could not upsert" 400
	CodeShopUnavailable   = "magento_unavailable"
	CodeUnauthorized      = "magento_unauthorized"
	CodeTokenRevoked      = "magento_token_revoked"
	CodeTenantNotFound    = "tenant_not_found"
	CodeTenantNotPaired   = "tenant_not_paired"
	CodeBindingRevoked    = "binding_revoked"
	CodeStoreUnavailable  = "store_unavailable"
	CodeEntityLockTimeout = "entity_lock_timeout"
)

// MirroredEntityTypes are the entity types Magento's sync-state callback accepts
// (wire §5.1); a result for anything else would be refused with a 400.
var MirroredEntityTypes = []string{"invoice", "creditmemo", "customer", "product"}

func mirrored(entityType string) bool {
	for _, t := range MirroredEntityTypes {
		if t == entityType {
			return true
		}
	}
	return false
}

// maxColumn is the width of the optional varchar(64) columns (wire §5.2). A
// longer value would make the upsert fail ("Could not upsert", a 400 that looks
// transient), so values are cut to fit instead of being retried for ever.
const maxColumn = 64

// SyncStateFor builds the callback body of a terminal result (wire §5.1).
// Only the column that belongs to the status is set; the others are nil,
// which Magento treats as "not sent" and which clears the column, so a row
// that goes from failed to synced loses its error code. provider_reference is
// always null for now (the module documents it as "v1.1+"). ok is false for a
// result without a terminal status (pending is never sent).
//
// last_sync_at is finished_at in UTC as "YYYY-MM-DD HH:MM:SS": it is stored
// straight into a MySQL timestamp column, and whether that column accepts the
// documented RFC 3339 form ("…T10:11:12Z") depends on the MySQL/MariaDB version
// and SQL mode, while this form, the one Magento writes itself, is accepted by
// every mode (wire §9.10).
func SyncStateFor(res *ledgerv1.SyncResult, finishedAt time.Time) (state magento.SyncState, ok bool) {
	state = magento.SyncState{
		EntityType:      res.GetEntityType(),
		MagentoEntityID: res.GetMagentoEntityId(),
		Provider:        magento.ProviderSage,
		LastSyncAt:      finishedAt.UTC().Format(magento.MySQLTimestamp),
	}
	switch res.GetStatus() {
	case ledgerv1.SyncStatus_SYNC_STATUS_SYNCED:
		state.SyncStatus = "synced"
		state.ProviderEntityID = column(res.GetProviderEntityId())
	case ledgerv1.SyncStatus_SYNC_STATUS_SKIPPED:
		state.SyncStatus = "skipped"
		state.SkipReason = column(res.GetSkipReason())
	case ledgerv1.SyncStatus_SYNC_STATUS_FAILED:
		state.SyncStatus = "failed"
		// error_code is a short stable code; a failure without one still says
		// which class of error it was.
		code := res.GetErrorCode()
		if code == "" {
			code = res.GetErrorClass()
		}
		state.ErrorCode = column(code)
	default:
		return magento.SyncState{}, false
	}
	return state, true
}

// column returns nil for "" and v cut to maxColumn characters otherwise.
func column(v string) *string {
	if v == "" {
		return nil
	}
	if utf8.RuneCountInString(v) > maxColumn {
		r := []rune(v)
		v = string(r[:maxColumn])
	}
	return &v
}

// delivery carries one result through handle.
type delivery struct {
	res        *ledgerv1.SyncResult
	finishedAt time.Time // microsecond precision, like the callback mark
	attempt    uint64    // JetStream delivery count, 1-based
	log        *slog.Logger
}

// outcome fills in the identifying fields of a bus outcome.
func (d *delivery) outcome(o bus.Outcome) bus.Outcome {
	o.TenantID, o.RunID, o.Entity = d.res.GetTenantId(), d.res.GetSyncRunId(), d.res.GetEntityType()
	return o
}

func (s *Service) handle(ctx context.Context, msg jetstream.Msg) bus.Outcome {
	attempt := uint64(1)
	var published time.Time
	if meta, err := msg.Metadata(); err == nil {
		attempt, published = meta.NumDelivered, meta.Timestamp
	}
	res := &ledgerv1.SyncResult{}
	if err := proto.Unmarshal(msg.Data(), res); err != nil {
		tenant, entity := subjectParts(msg.Subject())
		s.log.Error("statecallback: undecodable result; dead-lettering", "subject", msg.Subject(), "err", err)
		s.results.WithLabelValues(outcomeDeadLettered).Inc()
		return bus.Outcome{Verdict: bus.DeadLetter, Class: "serde", Code: CodeUndecodable,
			Message: "the message is not a ledger.v1.SyncResult: " + err.Error(), TenantID: tenant, Entity: entity}
	}
	log := s.log.With("tenant", res.GetTenantId(), "run", res.GetSyncRunId(),
		"entity_type", res.GetEntityType(), "magento_entity_id", res.GetMagentoEntityId(), "attempt", attempt)
	if tp := msg.Headers().Get(bus.HeaderTraceparent); tp != "" {
		log = log.With("traceparent", tp)
	}
	if !mirrored(res.GetEntityType()) || res.GetMagentoEntityId() <= 0 {
		log.Debug("statecallback: Magento keeps no sync state for this entity; not sending")
		s.results.WithLabelValues(outcomeIgnored).Inc()
		return bus.Done()
	}
	finishedAt := published
	if res.GetFinishedAt().IsValid() {
		finishedAt = res.GetFinishedAt().AsTime()
	} else {
		log.Warn("statecallback: result has no finished_at; ordering it by its publish time")
	}
	d := &delivery{res: res, finishedAt: finishedAt.UTC().Truncate(time.Microsecond), attempt: attempt, log: log}

	key := res.GetTenantId() + "\x00" + res.GetEntityType() + "\x00" + fmt.Sprint(res.GetMagentoEntityId())
	unlock, err := s.locks.lock(ctx, key)
	if err != nil {
		log.Warn("statecallback: another delivery for this entity is still running; retrying")
		return s.retry(d, bus.Outcome{Class: "internal", Code: CodeEntityLockTimeout, Message: "entity busy: " + err.Error()})
	}
	defer unlock()
	return s.deliver(ctx, d)
}

// deliver runs under the entity lock: check the mark, send, record the mark.
func (s *Service) deliver(ctx context.Context, d *delivery) bus.Outcome {
	res, log := d.res, d.log
	state, ok := SyncStateFor(res, d.finishedAt)
	if !ok {
		log.Error("statecallback: result has no terminal status; dead-lettering", "status", res.GetStatus().String())
		s.results.WithLabelValues(outcomeDeadLettered).Inc()
		return d.outcome(bus.Outcome{Verdict: bus.DeadLetter, Class: "serde", Code: CodeNoStatus,
			Message: "sync result has status " + res.GetStatus().String() + "; only synced, skipped and failed are mirrored"})
	}
	if _, err := uuid.Parse(res.GetSyncRunId()); err != nil {
		// The callback mark names the run (a uuid column); a result without a
		// run id is a producer bug an operator should see, not a silent send.
		log.Error("statecallback: result has no valid sync_run_id; dead-lettering")
		s.results.WithLabelValues(outcomeDeadLettered).Inc()
		return d.outcome(bus.Outcome{Verdict: bus.DeadLetter, Class: "serde", Code: CodeBadRunID,
			Message: "sync result has sync_run_id " + fmt.Sprintf("%q", res.GetSyncRunId()) + "; a run uuid is required"})
	}
	log = log.With("sync_status", state.SyncStatus)

	// Newest wins: Magento overwrites the row with whatever arrives last.
	mark, marked, err := s.st.CallbackMark(ctx, res.GetTenantId(), res.GetEntityType(), res.GetMagentoEntityId())
	if err != nil {
		log.Warn("statecallback: cannot read the callback mark; retrying", "err", err)
		return s.retry(d, bus.Outcome{Class: "database", Code: CodeStoreUnavailable, Message: err.Error()})
	}
	if marked && mark.After(d.finishedAt) {
		log.Info("statecallback: stale result, a newer one was already delivered; not sending",
			"finished_at", d.finishedAt, "delivered_finished_at", mark)
		s.results.WithLabelValues(outcomeStale).Inc()
		return bus.Done()
	}

	tenant, err := s.st.Tenant(ctx, res.GetTenantId())
	if errors.Is(err, store.ErrNotFound) {
		log.Error("statecallback: unknown tenant; dead-lettering")
		s.results.WithLabelValues(outcomeDeadLettered).Inc()
		return d.outcome(bus.Outcome{Verdict: bus.DeadLetter, Class: "not_found", Code: CodeTenantNotFound,
			Message: "tenant " + res.GetTenantId() + " does not exist"})
	}
	if err != nil {
		log.Warn("statecallback: cannot load the tenant; retrying", "err", err)
		return s.retry(d, bus.Outcome{Class: "database", Code: CodeStoreUnavailable, Message: err.Error()})
	}
	b := tenant.Binding
	switch {
	case b.MagentoConnectionStatus == store.StatusRevoked:
		log.Warn("statecallback: Magento binding is revoked; parking until re-paired")
		return s.park(d, bus.Outcome{Class: "auth", Code: CodeBindingRevoked, Message: "the Magento binding was revoked; re-pair the shop"})
	case b.APIKey == "" || b.MagentoBaseURL == "":
		log.Warn("statecallback: tenant is not paired with a shop; parking until paired")
		return s.park(d, bus.Outcome{Class: "auth", Code: CodeTenantNotPaired, Message: "the tenant is not paired with a Magento shop"})
	}
	shop := Shop{TenantID: tenant.ID, BaseURL: b.MagentoBaseURL, APIKey: secrets.String(b.APIKey)}

	start := time.Now()
	err = s.tr.SendSyncState(ctx, shop, state)
	s.sendSeconds.Observe(time.Since(start).Seconds())
	if err == nil {
		return s.delivered(ctx, d, tenant, log)
	}
	de := classify(err)
	log.Warn("statecallback: sync state not delivered", "status", de.Status, "kind", de.Kind.String(), "err", de.Message)
	switch de.Kind {
	case Rejected:
		s.results.WithLabelValues(outcomeDeadLettered).Inc()
		return d.outcome(bus.Outcome{Verdict: bus.DeadLetter, Class: "http", Code: CodeRejected,
			Message: de.Message, HTTPStatus: de.Status})
	case Unauthorized:
		return s.unauthorized(ctx, d, shop, tenant, de)
	default:
		code := CodeShopUnavailable
		if de.Status == http.StatusBadRequest && strings.Contains(de.Message, "Could not upsert") {
			code = CodeNotSaved
		}
		return s.retry(d, bus.Outcome{Class: "http", Code: code, Message: de.Message, HTTPStatus: de.Status})
	}
}

func (s *Service) delivered(ctx context.Context, d *delivery, tenant store.Tenant, log *slog.Logger) bus.Outcome {
	res := d.res
	if err := s.st.SetCallbackMark(ctx, res.GetTenantId(), res.GetEntityType(), res.GetMagentoEntityId(), d.finishedAt, res.GetSyncRunId()); err != nil {
		// Sending the same body again is harmless; a missing mark is not.
		log.Warn("statecallback: delivered but the callback mark was not saved; retrying", "err", err)
		return s.retry(d, bus.Outcome{Class: "database", Code: CodeStoreUnavailable, Message: err.Error()})
	}
	if tenant.Binding.MagentoConnectionStatus == store.StatusTokenRevoked {
		// The shop accepts our key again (clock fixed, key restored).
		if err := s.st.SetMagentoStatus(ctx, tenant.ID, store.StatusActive); err != nil {
			log.Warn("statecallback: cannot mark the binding active again", "err", err)
		} else {
			log.Info("statecallback: shop accepts Ledger's key again; binding active")
		}
	}
	log.Info("statecallback: sync state delivered")
	s.results.WithLabelValues(outcomeDelivered).Inc()
	return bus.Done()
}

// unauthorized handles a 401 (wire §7.3): a ping tells auth drift (ping 401 too:
// token_revoked, park) from a one-off refusal (ping fine: retry soon).
func (s *Service) unauthorized(ctx context.Context, d *delivery, shop Shop, tenant store.Tenant, de *DeliveryError) bus.Outcome {
	log := d.log
	perr := s.tr.Ping(ctx, shop)
	if perr == nil {
		log.Warn("statecallback: shop refused the sync state with 401 but accepts a ping; retrying")
		return s.retry(d, bus.Outcome{Class: "auth", Code: CodeUnauthorized, Message: de.Message, HTTPStatus: de.Status})
	}
	pde := classify(perr)
	if pde.Kind != Unauthorized {
		log.Warn("statecallback: ping after a 401 failed too; retrying", "status", pde.Status, "err", pde.Message)
		return s.retry(d, bus.Outcome{Class: "http", Code: CodeShopUnavailable, Message: pde.Message, HTTPStatus: pde.Status})
	}
	if tenant.Binding.MagentoConnectionStatus != store.StatusTokenRevoked {
		if err := s.st.SetMagentoStatus(ctx, tenant.ID, store.StatusTokenRevoked); err != nil {
			log.Error("statecallback: cannot mark the binding token_revoked", "err", err)
		} else {
			log.Warn("statecallback: shop refuses Ledger's key (sync-state and ping both 401); binding marked token_revoked")
		}
	}
	return s.park(d, bus.Outcome{Class: "auth", Code: CodeTokenRevoked, HTTPStatus: http.StatusUnauthorized,
		Message: "the shop refuses Ledger's key (401 on sync-state and ping): re-pair the shop, then the result is delivered"})
}

func (s *Service) retry(d *delivery, o bus.Outcome) bus.Outcome {
	o.Verdict, o.Delay = bus.Retry, s.backoff(d.attempt)
	s.results.WithLabelValues(outcomeRetried).Inc()
	return d.outcome(o)
}

// park retries after ParkDelay: the tenant cannot be called until an operator
// acts, and the result must still arrive afterwards.
func (s *Service) park(d *delivery, o bus.Outcome) bus.Outcome {
	o.Verdict, o.Delay = bus.Retry, s.cfg.ParkDelay
	s.results.WithLabelValues(outcomeParked).Inc()
	return d.outcome(o)
}

// subjectParts reads tenant and entity from ledger.result.<tenant>.<entity>.
func subjectParts(subject string) (tenant, entity string) {
	parts := strings.Split(subject, ".")
	if len(parts) >= 4 {
		return parts[2], parts[3]
	}
	return "", ""
}
