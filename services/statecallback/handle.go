package statecallback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/secrets"
	"github.com/ledgersync/ledger/libs/store"
	"github.com/ledgersync/ledger/libs/telemetry"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// Stable error codes of statecallback's dead letters.
const (
	CodeUndecodable      = "result_undecodable"
	CodeNoStatus         = "result_without_status"
	CodeBadRunID         = "result_bad_run_id"
	CodeRejected         = "sync_state_rejected"
	CodeNotSaved         = "sync_state_not_saved" // the "Could not upsert" 400
	CodeShopUnavailable  = "magento_unavailable"
	CodeUnauthorized     = "magento_unauthorized"
	CodeTokenRevoked     = "magento_token_revoked"
	CodeTenantNotFound   = "tenant_not_found"
	CodeTenantNotPaired  = "tenant_not_paired"
	CodeBindingRevoked   = "binding_revoked"
	CodeStoreUnavailable = "store_unavailable"
	CodeEntityBusy       = "entity_busy"   // another replica holds the entity
	CodeShuttingDown     = "shutting_down" // settled unsent at shutdown
)

// MirroredEntityTypes are the entity types Magento's sync-state callback accepts
// (its entity_type); a result for anything else would be refused with a 400.
var MirroredEntityTypes = []string{"invoice", "creditmemo", "customer", "product"}

func mirrored(entityType string) bool {
	for _, t := range MirroredEntityTypes {
		if t == entityType {
			return true
		}
	}
	return false
}

// maxColumn is the width of the optional varchar(64) columns of Magento's
// byte8_entity_sync_state table. A longer value would make the upsert fail
// ("Could not upsert", a 400 that looks transient), so values are cut to fit
// instead of being retried for ever.
const maxColumn = 64

// SyncStateFor builds the callback body of a terminal result.
// Only the columns that belong to the status are set (a synced row's
// skip_reason says "updated" or "unchanged" when the run created nothing:
// syncedDetail); the others are nil,
// which Magento treats as "not sent" and which clears the column, so a row
// that goes from failed to synced loses its error code. provider_reference is
// always null for now (the module documents it as "v1.1+"). ok is false for a
// result without a terminal status (pending is never sent).
//
// last_sync_at is finished_at in UTC as "YYYY-MM-DD HH:MM:SS": it is stored
// straight into a MySQL timestamp column, and whether that column accepts the
// documented RFC 3339 form ("…T10:11:12Z") depends on the MySQL/MariaDB version
// and SQL mode, while this form, the one Magento writes itself, is accepted by
// every mode.
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
		state.SkipReason = column(syncedDetail(res.GetChange()))
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

// syncedDetail is what the skip_reason column of a synced row says: "updated"
// when the run changed its Sage document(s) with PUT, "unchanged" when it made
// no call because Sage already held what Ledger would send, nothing for a
// creation (what synced has always meant). Magento's table has no other
// column for it (wire §5.2: status, provider id and reference, skip reason,
// error code); skip_reason is the one that says why a row is as it is, as a
// stable code of at most 64 characters, and the callback stores it whatever
// the status (§5.1).
func syncedDetail(change string) string {
	switch change {
	case "updated", "unchanged":
		return change
	}
	return ""
}

// The range of the shop's last_sync_at, a MySQL timestamp column: a time
// outside it fails Magento's upsert with "Could not upsert", which is retried
// as a database failure and can never succeed.
var (
	minSyncTime = time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC)
	maxSyncTime = time.Date(2038, 1, 19, 3, 14, 7, 0, time.UTC)
)

// storableSyncTime reports whether t, cut to the second, fits last_sync_at.
func storableSyncTime(t time.Time) bool {
	t = t.Truncate(time.Second)
	return !t.Before(minSyncTime) && !t.After(maxSyncTime)
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

// delivery carries one result from the consumer to its settlement.
type delivery struct {
	msg        jetstream.Msg
	seq        uint64 // stream sequence, to recognise a redelivery we already hold
	res        *ledgerv1.SyncResult
	entity     store.CallbackEntity
	state      magento.SyncState
	finishedAt time.Time // microsecond precision, like the callback mark
	attempt    uint64    // JetStream delivery count, 1-based
	log        *slog.Logger
	out        bus.Outcome // set by the batch that handled it
	// span is the delivery's consumer span ("statecallback process"), from
	// its arrival until it is settled; its shop call is a child of it.
	span trace.Span
	// start is when it arrived (the stage's duration runs to its settlement).
	start time.Time
}

// context is ctx carrying the delivery's span: what its shop call and log
// lines run in.
func (d *delivery) context(ctx context.Context) context.Context {
	return trace.ContextWithSpan(ctx, d.span)
}

// outcome fills in the identifying fields of a bus outcome.
func (d *delivery) outcome(o bus.Outcome) bus.Outcome {
	o.TenantID, o.RunID, o.Entity = d.res.GetTenantId(), d.res.GetSyncRunId(), d.res.GetEntityType()
	return o
}

// newer reports whether d supersedes o for the same entity: it finished later,
// or at the same time and was published later (the same result re-fired).
func (d *delivery) newer(o *delivery) bool {
	if !d.finishedAt.Equal(o.finishedAt) {
		return d.finishedAt.After(o.finishedAt)
	}
	return d.seq > o.seq
}

// prepare decodes a message. It returns the delivery to batch, or, for a
// message that is settled without calling any shop, its outcome. ctx carries
// the delivery's consumer span.
func (s *Service) prepare(ctx context.Context, msg jetstream.Msg) (*delivery, bus.Outcome) {
	attempt, seq := uint64(1), uint64(0)
	var published time.Time
	if meta, err := msg.Metadata(); err == nil {
		attempt, published, seq = meta.NumDelivered, meta.Timestamp, meta.Sequence.Stream
	}
	res := &ledgerv1.SyncResult{}
	if err := proto.Unmarshal(msg.Data(), res); err != nil {
		tenant, entity := subjectParts(msg.Subject())
		s.log.ErrorContext(ctx, "statecallback: undecodable result; dead-lettering", "subject", msg.Subject(), "err", err)
		s.results.WithLabelValues(outcomeDeadLettered).Inc()
		return nil, bus.Outcome{Verdict: bus.DeadLetter, Class: "serde", Code: CodeUndecodable,
			Message: "the message is not a ledger.v1.SyncResult: " + err.Error(), TenantID: tenant, Entity: entity}
	}
	// Lines logged with the delivery's context carry its trace id.
	log := s.log.With("tenant", res.GetTenantId(), "run", res.GetSyncRunId(),
		"entity_type", res.GetEntityType(), "magento_entity_id", res.GetMagentoEntityId(), "attempt", attempt)
	telemetry.Annotate(ctx, telemetry.AttrRunID.String(res.GetSyncRunId()), telemetry.AttrMagentoEntityID.Int64(res.GetMagentoEntityId()),
		attribute.String("ledger.sync_status", res.GetStatus().String()))
	d := &delivery{msg: msg, seq: seq, res: res, attempt: attempt, log: log, span: trace.SpanFromContext(ctx),
		entity: store.CallbackEntity{EntityType: res.GetEntityType(), MagentoID: res.GetMagentoEntityId()}}
	if !mirrored(res.GetEntityType()) || res.GetMagentoEntityId() <= 0 {
		log.DebugContext(ctx, "statecallback: Magento keeps no sync state for this entity; not sending")
		s.results.WithLabelValues(outcomeIgnored).Inc()
		return nil, bus.Done()
	}
	finishedAt := published
	if fa := res.GetFinishedAt(); fa.IsValid() && storableSyncTime(fa.AsTime()) {
		finishedAt = fa.AsTime()
	} else {
		log.WarnContext(ctx, "statecallback: result has no finished_at the shop can store; ordering it by its publish time",
			"finished_at", fa.AsTime())
	}
	if !storableSyncTime(finishedAt) {
		finishedAt = time.Now()
	}
	d.finishedAt = finishedAt.UTC().Truncate(time.Microsecond)
	state, ok := SyncStateFor(res, d.finishedAt)
	if !ok {
		log.ErrorContext(ctx, "statecallback: result has no terminal status; dead-lettering", "status", res.GetStatus().String())
		s.results.WithLabelValues(outcomeDeadLettered).Inc()
		return nil, d.outcome(bus.Outcome{Verdict: bus.DeadLetter, Class: "serde", Code: CodeNoStatus,
			Message: "sync result has status " + res.GetStatus().String() + "; only synced, skipped and failed are mirrored"})
	}
	if _, err := uuid.Parse(res.GetSyncRunId()); err != nil {
		// The callback mark names the run (a uuid column); a result without a
		// run id is a producer bug an operator should see, not a silent send.
		log.ErrorContext(ctx, "statecallback: result has no valid sync_run_id; dead-lettering")
		s.results.WithLabelValues(outcomeDeadLettered).Inc()
		return nil, d.outcome(bus.Outcome{Verdict: bus.DeadLetter, Class: "serde", Code: CodeBadRunID,
			Message: "sync result has sync_run_id " + fmt.Sprintf("%q", res.GetSyncRunId()) + "; a run uuid is required"})
	}
	d.state = state
	d.log = log.With("sync_status", state.SyncStatus)
	return d, bus.Outcome{}
}

// batchRun is one batch of one shop on its way through deliverBatch; every
// delivery in it is for a different entity.
type batchRun struct {
	tenantID string
	all      []*delivery
	stopping func() bool // the service is shutting down: send nothing more
	// calls bounds the shop's concurrent calls (Config.PerShop), shared by
	// all its batches; nil means one call at a time.
	calls chan struct{}
}

// each sets the outcome of every delivery in ds still undecided, through f.
func each(ds []*delivery, f func(*delivery) bus.Outcome) {
	for _, d := range ds {
		d.out = f(d)
	}
}

// deliverBatch decides the outcome of every delivery of one shop's batch.
// Order: tenant and binding (no shop call when it cannot succeed), the
// cross-process entity locks, the callback marks (stale results are not sent),
// the send, the marks of what was stored, then the locks are released.
func (s *Service) deliverBatch(ctx context.Context, locker *store.CallbackLocker, b *batchRun) {
	log := s.log.With("tenant", b.tenantID)
	tenant, err := s.st.Tenant(ctx, b.tenantID)
	if errors.Is(err, store.ErrNotFound) {
		log.Error("statecallback: unknown tenant; dead-lettering", "results", len(b.all))
		each(b.all, func(d *delivery) bus.Outcome {
			s.results.WithLabelValues(outcomeDeadLettered).Inc()
			return d.outcome(bus.Outcome{Verdict: bus.DeadLetter, Class: "not_found", Code: CodeTenantNotFound,
				Message: "tenant " + b.tenantID + " does not exist"})
		})
		return
	}
	if err != nil {
		log.Warn("statecallback: cannot load the tenant; retrying", "err", err)
		each(b.all, func(d *delivery) bus.Outcome { return s.retry(d, storeFailure(err)) })
		return
	}
	bd := tenant.Binding
	switch {
	case bd.MagentoConnectionStatus == store.StatusRevoked:
		log.Warn("statecallback: Magento binding is revoked; parking until re-paired", "results", len(b.all))
		each(b.all, func(d *delivery) bus.Outcome {
			return s.park(d, bus.Outcome{Class: "auth", Code: CodeBindingRevoked, Message: "the Magento binding was revoked; re-pair the shop"})
		})
		return
	case bd.APIKey == "" || (bd.MagentoBaseURL == "" && bd.CallbackTransport != store.TransportGRPC && bd.CallbackTransport != store.TransportNATS):
		log.Warn("statecallback: tenant is not paired with a shop; parking until paired", "results", len(b.all))
		each(b.all, func(d *delivery) bus.Outcome {
			return s.park(d, bus.Outcome{Class: "auth", Code: CodeTenantNotPaired, Message: "the tenant is not paired with a Magento shop"})
		})
		return
	}
	shop := Shop{TenantID: tenant.ID, BaseURL: bd.MagentoBaseURL, APIKey: secrets.String(bd.APIKey), GRPCTarget: bd.CallbackGRPCTarget}
	tr := s.transportFor(bd)

	if bd.MagentoConnectionStatus == store.StatusTokenRevoked && !s.probe(b.all[0].context(ctx), tr, shop, log) {
		// Parked without calling the shop: it refuses our key until an operator
		// re-pairs (which sets the binding active) or a probe succeeds.
		each(b.all, func(d *delivery) bus.Outcome { return s.park(d, tokenRevoked()) })
		return
	}

	entities := make([]store.CallbackEntity, len(b.all))
	for i, d := range b.all {
		entities[i] = d.entity
	}
	// One transaction for the batch: the locks and the marks are read in one
	// round trip, the marks of what was stored are written by its commit, and
	// the commit frees the locks. See doc.go for why a crash at any point is
	// safe.
	lock, locked, marks, err := locker.Lock(ctx, b.tenantID, entities)
	if err != nil {
		log.Warn("statecallback: cannot take the entity locks; retrying", "err", err)
		each(b.all, func(d *delivery) bus.Outcome { return s.retry(d, storeFailure(err)) })
		return
	}
	defer lock.Release() // nothing written unless Commit ran
	var send []*delivery
	for i, d := range b.all {
		if !locked[i] {
			// Another replica is delivering this entity right now.
			d.log.InfoContext(d.context(ctx), "statecallback: entity busy in another replica; retrying shortly")
			d.out = s.retryIn(d, s.cfg.RetryBase, bus.Outcome{Class: "internal", Code: CodeEntityBusy,
				Message: "another statecallback replica is delivering this entity"})
			continue
		}
		if mark, ok := marks[d.entity]; ok && mark.After(d.finishedAt) {
			d.log.InfoContext(d.context(ctx), "statecallback: stale result, a newer one was already delivered; not sending",
				"finished_at", d.finishedAt, "delivered_finished_at", mark)
			s.results.WithLabelValues(outcomeStale).Inc()
			d.out = bus.Done()
			continue
		}
		send = append(send, d)
	}
	if len(send) == 0 {
		return
	}

	stored, unauthorized := s.send(ctx, tr, shop, send, b)
	if len(stored) > 0 {
		updates := make([]store.CallbackMarkUpdate, len(stored))
		for i, d := range stored {
			updates[i] = store.CallbackMarkUpdate{Entity: d.entity, FinishedAt: d.finishedAt, RunID: d.res.GetSyncRunId()}
		}
		if err := lock.Commit(ctx, updates); err != nil {
			// Sending the same body again is harmless; a missing mark is not.
			log.Warn("statecallback: delivered but the callback marks were not saved; retrying", "err", err)
			each(stored, func(d *delivery) bus.Outcome { return s.retry(d, storeFailure(err)) })
		} else {
			for _, d := range stored {
				d.log.DebugContext(d.context(ctx), "statecallback: sync state delivered")
				s.results.WithLabelValues(outcomeDelivered).Inc()
				d.out = bus.Done()
			}
			log.Info("statecallback: sync states delivered", "results", len(stored))
		}
	}
	if len(unauthorized) > 0 {
		s.unauthorized(unauthorized[0].context(ctx), tr, shop, tenant, unauthorized)
	}
}

// send delivers the batch: one call for a BatchTransport, otherwise one call
// per row, several at once within the shop's limit (b.calls). Every row is a
// different entity (the dispatcher keeps only the newest result of each), so
// their order does not matter for newest-wins. At the first failure that says
// the shop is not taking anything (down, overloaded, refusing our key) no
// further call is started, and the rows not sent get the same outcome without
// a call. It sets the outcome of every failed delivery and returns the stored
// ones and those refused with a 401 (handled together).
func (s *Service) send(ctx context.Context, tr Transport, shop Shop, ds []*delivery, b *batchRun) (stored, unauthorized []*delivery) {
	var mu sync.Mutex // guards stored and unauthorized
	fail := func(d *delivery, de *DeliveryError) {
		d.log.WarnContext(d.context(ctx), "statecallback: sync state not delivered", "status", de.Status, "kind", de.Kind.String(), "err", de.Message)
		switch de.Kind {
		case Rejected:
			s.results.WithLabelValues(outcomeDeadLettered).Inc()
			d.out = d.outcome(bus.Outcome{Verdict: bus.DeadLetter, Class: "http", Code: CodeRejected,
				Message: de.Message, HTTPStatus: de.Status})
		case Unauthorized:
			mu.Lock()
			unauthorized = append(unauthorized, d)
			mu.Unlock()
		default:
			code := CodeShopUnavailable
			if de.NotSaved {
				code = CodeNotSaved
			}
			d.out = s.retry(d, bus.Outcome{Class: "http", Code: code, Message: de.Message, HTTPStatus: de.Status})
		}
	}
	if bt, ok := tr.(BatchTransport); ok {
		states := make([]magento.SyncState, len(ds))
		for i, d := range ds {
			states[i] = d.state
		}
		// One call for the batch: a span of its own, a child of the first
		// result's span and linked to every other one.
		links := make([]trace.Link, 0, len(ds)-1)
		for _, d := range ds[1:] {
			links = append(links, trace.Link{SpanContext: d.span.SpanContext()})
		}
		bctx, bspan := telemetry.Tracer().Start(ds[0].context(ctx), "statecallback push batch", trace.WithLinks(links...),
			trace.WithAttributes(telemetry.AttrTenant.String(shop.TenantID), attribute.Int("ledger.batch_size", len(ds))))
		start := time.Now()
		errs, err := bt.SendSyncStates(bctx, shop, states)
		s.observeCall(start, err)
		bspan.End()
		if err != nil {
			de := classify(err)
			for _, d := range ds {
				fail(d, de)
			}
			return stored, unauthorized
		}
		for i, d := range ds {
			if errs[i] == nil {
				stored = append(stored, d)
			} else {
				fail(d, classify(errs[i]))
			}
		}
		return stored, unauthorized
	}

	calls := b.calls
	if calls == nil {
		calls = make(chan struct{}, 1)
	}
	var (
		wg       sync.WaitGroup
		shopDown *DeliveryError // set by the first shop-wide failure
		sent     = make([]bool, len(ds))
	)
	for i, d := range ds {
		calls <- struct{}{}
		mu.Lock()
		down := shopDown
		mu.Unlock()
		if down != nil || b.stopping() {
			<-calls
			break
		}
		sent[i] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-calls }()
			start := time.Now()
			err := tr.SendSyncState(d.context(ctx), shop, d.state)
			s.observeCall(start, err)
			if err == nil {
				mu.Lock()
				stored = append(stored, d)
				mu.Unlock()
				return
			}
			de := classify(err)
			if shopWide(de) {
				mu.Lock()
				if shopDown == nil {
					shopDown = de
				}
				mu.Unlock()
			}
			fail(d, de)
		}()
	}
	wg.Wait()
	for i, d := range ds {
		switch {
		case sent[i]:
		case shopDown != nil:
			fail(d, shopDown)
		default: // stopping
			d.out = s.retryIn(d, 0, bus.Outcome{Class: "internal", Code: CodeShuttingDown, Message: "statecallback stopped before sending"})
		}
	}
	return stored, unauthorized
}

// shopWide reports whether a failure says the shop takes nothing right now (as
// opposed to refusing one row): 401, 5xx, 429, timeouts, network errors. The
// "Could not upsert" 400 may be about one row only, so the batch goes on.
func shopWide(de *DeliveryError) bool {
	switch de.Kind {
	case Unauthorized:
		return true
	case Transient:
		return de.Status == 0 || de.Status >= 500 || de.Status == http.StatusTooManyRequests || de.Status == http.StatusRequestTimeout
	}
	return false
}

// observeCall times and counts one call to a shop by its result: ok, or the
// kind of failure (transient, rejected, unauthorized). A batch call counts
// its transport's answer, not each row's.
func (s *Service) observeCall(start time.Time, err error) {
	s.sendSeconds.Observe(time.Since(start).Seconds())
	result := "ok"
	if err != nil {
		result = classify(err).Kind.String()
	}
	s.calls.WithLabelValues(result).Inc()
}

// unauthorized handles 401s: a ping tells auth drift (ping 401 too:
// token_revoked, park) from a one-off refusal (ping fine: retry soon).
func (s *Service) unauthorized(ctx context.Context, tr Transport, shop Shop, tenant store.Tenant, ds []*delivery) {
	log := s.log.With("tenant", tenant.ID)
	perr := tr.Ping(ctx, shop)
	if perr == nil {
		log.Warn("statecallback: shop refused sync states with 401 but accepts a ping; retrying", "results", len(ds))
		each(ds, func(d *delivery) bus.Outcome {
			return s.retry(d, bus.Outcome{Class: "auth", Code: CodeUnauthorized, HTTPStatus: http.StatusUnauthorized,
				Message: "the shop refused the sync state with 401 but accepts a ping"})
		})
		return
	}
	pde := classify(perr)
	if pde.Kind != Unauthorized {
		log.Warn("statecallback: ping after a 401 failed too; retrying", "status", pde.Status, "err", pde.Message)
		each(ds, func(d *delivery) bus.Outcome {
			return s.retry(d, bus.Outcome{Class: "http", Code: CodeShopUnavailable, Message: pde.Message, HTTPStatus: pde.Status})
		})
		return
	}
	if tenant.Binding.MagentoConnectionStatus != store.StatusTokenRevoked {
		if err := s.st.SetMagentoStatus(ctx, tenant.ID, store.StatusTokenRevoked); err != nil {
			log.Error("statecallback: cannot mark the binding token_revoked", "err", err)
		} else {
			log.Warn("statecallback: shop refuses Ledger's key (sync-state and ping both 401); binding marked token_revoked; parking its results until re-paired")
		}
	}
	s.noteProbe(tenant.ID)
	each(ds, func(d *delivery) bus.Outcome { return s.park(d, tokenRevoked()) })
}

func tokenRevoked() bus.Outcome {
	return bus.Outcome{Class: "auth", Code: CodeTokenRevoked, HTTPStatus: http.StatusUnauthorized,
		Message: "the shop refuses Ledger's key (401 on sync-state and ping): re-pair the shop, then the result is delivered"}
}

func storeFailure(err error) bus.Outcome {
	return bus.Outcome{Class: "database", Code: CodeStoreUnavailable, Message: err.Error()}
}

// probe decides whether a token_revoked shop is called at all. At most once per
// ParkDelay per tenant it pings the shop; when the ping is accepted (the key
// was restored, the clock fixed) the binding is set active again and the batch
// is sent. Otherwise the batch is parked without touching the shop.
func (s *Service) probe(ctx context.Context, tr Transport, shop Shop, log *slog.Logger) bool {
	s.probeMu.Lock()
	last, ok := s.probes[shop.TenantID]
	due := !ok || time.Since(last) >= s.cfg.ParkDelay
	if due {
		s.probes[shop.TenantID] = time.Now()
	}
	s.probeMu.Unlock()
	if !due {
		return false
	}
	if err := tr.Ping(ctx, shop); err != nil {
		log.Info("statecallback: token_revoked shop still refuses Ledger's key; results stay parked", "err", classify(err).Message)
		return false
	}
	if err := s.st.SetMagentoStatus(ctx, shop.TenantID, store.StatusActive); err != nil {
		log.Warn("statecallback: cannot mark the binding active again", "err", err)
		return false
	}
	log.Info("statecallback: shop accepts Ledger's key again; binding active")
	return true
}

// noteProbe records that a token_revoked shop was just called.
func (s *Service) noteProbe(tenantID string) {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	s.probes[tenantID] = time.Now()
}

// transportFor picks the binding's transport (Config.Transport overrides).
func (s *Service) transportFor(b store.Binding) Transport {
	switch {
	case s.cfg.Transport != nil:
		return s.cfg.Transport
	case b.CallbackTransport == store.TransportGRPC:
		return s.grpc
	case b.CallbackTransport == store.TransportNATS:
		return s.nats
	default:
		return s.http
	}
}

// retry redelivers after the back-off. Every retry is held (never
// dead-lettered) except a 401 the shop's ping contradicts, which is a
// configuration problem an operator should see.
func (s *Service) retry(d *delivery, o bus.Outcome) bus.Outcome {
	return s.retryIn(d, s.backoff(d.attempt), o)
}

func (s *Service) retryIn(d *delivery, delay time.Duration, o bus.Outcome) bus.Outcome {
	o.Verdict, o.Delay = bus.Retry, delay
	o.Hold = o.Code != CodeUnauthorized
	s.results.WithLabelValues(outcomeRetried).Inc()
	return d.outcome(o)
}

// park retries after ParkDelay, held: the shop cannot be called until an
// operator acts, and the result must still arrive afterwards.
func (s *Service) park(d *delivery, o bus.Outcome) bus.Outcome {
	o.Verdict, o.Delay, o.Hold = bus.Retry, s.cfg.ParkDelay, true
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
