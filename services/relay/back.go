package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ledgersync/ledger/libs/bus"
	ledgerv1 "github.com/ledgersync/ledger/proto/ledger/v1"
)

// SyncStateTable is the module's sync-state mirror (magento-wire.md §5.2).
const SyncStateTable = "byte8_entity_sync_state"

// The back channel: what Ledger sends a relay-connected shop on the SHOP
// stream (ledger.shop.<tenant>.>), applied to the shop's database so the shop
// needs no inbound call.
//
//   - syncstate (ledger.v1.PushSyncStateRequest, when the tenant's sync-state
//     transport is nats): each entry is upserted into byte8_entity_sync_state
//     with the HTTP mirror's rule — newest wins (an entry older than the row's
//     last_sync_at is dropped), except that a pending row, the module's own
//     write-through, is always overwritten.
//   - refused (ledger.v1.RefusedRow): ingest refused a row the relay had
//     published (its token does not prove the tenant, or its envelope is
//     invalid). The row, marked succeeded when JetStream acknowledged it,
//     becomes dead_lettered with the status and message the webhook would
//     have got, so the shop's dead-letter banner and
//     byte8:sage:outbox:inspect show it.
//
// A message is acknowledged only after its transaction committed; one that
// can never apply (not decodable, another tenant's) is terminated and logged.
const (
	// backBatch is how many SHOP messages one fetch takes.
	backBatch = 50
	// backFetchWait bounds one fetch; the loop checks for shutdown between
	// fetches, so a fetch is never cut short with messages in flight.
	backFetchWait = 2 * time.Second
	// backRetry is the redelivery delay after the shop's database failed.
	backRetry = 5 * time.Second
)

// BackDurable is the relay's durable consumer on SHOP: one per tenant, so the
// work queue's filters never overlap.
func BackDurable(tenant string) string { return "relay-" + tenant }

// backState is the back channel's readiness.
type backState struct {
	mu      sync.Mutex
	running bool
	lastErr error
}

func (b *backState) set(running bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.running, b.lastErr = running, err
}

func (b *backState) check() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.running:
		return nil
	case b.lastErr != nil:
		return fmt.Errorf("not consuming %s: %w", bus.StreamShop, b.lastErr)
	}
	return fmt.Errorf("not consuming %s yet", bus.StreamShop)
}

// RunBack consumes the tenant's SHOP messages until ctx ends. Until the
// consumer can be created (NATS away, or the relay user lacks the
// permissions of deploy/nats/relay/hub.conf) it tries again with back-off and
// says why in the log and in /readyz.
func (r *Relay) RunBack(ctx context.Context) error {
	cfg := jetstream.ConsumerConfig{
		Durable: BackDurable(r.cfg.TenantID), FilterSubject: bus.ShopTenantFilter(r.cfg.TenantID),
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: 2 * backBatch,
		Description: "relay of tenant " + r.cfg.TenantID + ": sync states and refused rows into the shop's database",
	}
	var cons jetstream.Consumer
	for attempt := 1; ; attempt++ {
		var err error
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err = r.js.CreateOrUpdateConsumer(cctx, bus.StreamShop, cfg)
		cancel()
		if err == nil {
			break
		}
		r.back.set(false, err)
		r.log.Warn("relay: cannot consume the SHOP stream yet; sync states and refusals wait there",
			"filter", cfg.FilterSubject, "err", err,
			"fix", "check RELAY_NATS_URL and that the relay user may use the consumer "+cfg.Durable+" (deploy/nats/relay/hub.conf)")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(min(time.Duration(attempt)*time.Second, 30*time.Second)):
		}
	}
	r.back.set(true, nil)
	defer r.back.set(false, nil)
	r.log.Info("relay: applying Ledger's sync states and refusals", "stream", bus.StreamShop, "filter", cfg.FilterSubject)
	for ctx.Err() == nil {
		batch, err := cons.Fetch(backBatch, jetstream.FetchMaxWait(backFetchWait))
		if err != nil {
			r.log.Warn("relay: fetching from SHOP failed; trying again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for msg := range batch.Messages() {
			r.settleBack(msg, r.applyBack(context.WithoutCancel(ctx), msg))
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			r.log.Warn("relay: a SHOP fetch ended with an error", "err", err)
		}
	}
	return nil
}

// backError is an outcome of one SHOP message that is not success.
type backError struct {
	permanent bool // terminate: it can never apply
	err       error
}

func (e *backError) Error() string { return e.err.Error() }

func (r *Relay) settleBack(msg jetstream.Msg, err error) {
	kind := msg.Subject()[strings.LastIndexByte(msg.Subject(), '.')+1:]
	var be *backError
	switch {
	case err == nil:
		r.backMsgs.WithLabelValues(kind, "applied").Inc()
		_ = msg.Ack()
	case errors.As(err, &be) && be.permanent:
		r.log.Error("relay: a SHOP message can never apply; dropped", "subject", msg.Subject(), "err", err)
		r.backMsgs.WithLabelValues(kind, "invalid").Inc()
		_ = msg.Term()
	default:
		r.log.Warn("relay: applying a SHOP message failed; it comes again", "subject", msg.Subject(), "err", err)
		r.backMsgs.WithLabelValues(kind, "retry").Inc()
		_ = msg.NakWithDelay(backRetry)
	}
}

// applyBack applies one SHOP message to the shop's database.
func (r *Relay) applyBack(ctx context.Context, msg jetstream.Msg) error {
	subj, err := bus.ParseSubject(msg.Subject())
	if err != nil || subj.Stream != bus.StreamShop {
		return &backError{permanent: true, err: fmt.Errorf("%q is not ledger.shop.<tenant>.<kind>", msg.Subject())}
	}
	if subj.Tenant != r.cfg.TenantID {
		return &backError{permanent: true, err: fmt.Errorf("the message is for tenant %s, this relay serves %s", subj.Tenant, r.cfg.TenantID)}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch subj.Entity {
	case bus.ShopSyncState:
		req := &ledgerv1.PushSyncStateRequest{}
		if err := proto.Unmarshal(msg.Data(), req); err != nil {
			return &backError{permanent: true, err: fmt.Errorf("not a ledger.v1.PushSyncStateRequest: %w", err)}
		}
		if req.GetTenantId() != r.cfg.TenantID {
			return &backError{permanent: true, err: fmt.Errorf("sync states of tenant %q on this tenant's subject", req.GetTenantId())}
		}
		return r.applySyncStates(ctx, req.GetEntries())
	case bus.ShopRefused:
		rr := &ledgerv1.RefusedRow{}
		if err := proto.Unmarshal(msg.Data(), rr); err != nil {
			return &backError{permanent: true, err: fmt.Errorf("not a ledger.v1.RefusedRow: %w", err)}
		}
		if rr.GetTenantId() != r.cfg.TenantID || rr.GetIdempotencyKey() == "" {
			return &backError{permanent: true, err: fmt.Errorf("refusal of tenant %q, key %q: not this tenant's row", rr.GetTenantId(), rr.GetIdempotencyKey())}
		}
		return r.applyRefused(ctx, rr)
	}
	return &backError{permanent: true, err: fmt.Errorf("unknown kind %q (this relay knows %s and %s)", subj.Entity, bus.ShopSyncState, bus.ShopRefused)}
}

// applySyncStates upserts entries in one transaction, newest wins.
func (r *Relay) applySyncStates(ctx context.Context, entries []*ledgerv1.SyncStateEntry) error {
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return fmt.Errorf("relay: begin: %w", err)
	}
	defer tx.Rollback()
	stale := 0
	for _, e := range entries {
		if e.GetEntityType() == "" || e.GetMagentoEntityId() <= 0 || e.GetProvider() == "" || e.GetSyncStatus() == "" {
			return &backError{permanent: true, err: fmt.Errorf("sync state %v lacks entity_type, magento_entity_id, provider or sync_status", e)}
		}
		at := any(e.GetLastSyncAt())
		if e.GetLastSyncAt() == "" {
			at = nil // the module's default: now
		}
		// Newest wins, as on the HTTP mirror: keep a terminal row whose
		// last_sync_at is later than this entry's; a pending row is the
		// module's own write-through and always gives way.
		var keep sql.NullBool
		err := tx.QueryRowContext(ctx, "SELECT sync_status <> 'pending' AND last_sync_at > COALESCE(?, UTC_TIMESTAMP()) FROM "+SyncStateTable+
			" WHERE entity_type = ? AND magento_id = ? AND provider = ? FOR UPDATE",
			at, e.GetEntityType(), e.GetMagentoEntityId(), e.GetProvider()).Scan(&keep)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("relay: reading %s %s/%d: %w", SyncStateTable, e.GetEntityType(), e.GetMagentoEntityId(), err)
		}
		if keep.Valid && keep.Bool {
			stale++
			continue
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO "+SyncStateTable+
			" (entity_type, magento_id, provider, sync_status, provider_entity_id, provider_reference, skip_reason, error_code, last_sync_at)"+
			" VALUES (?, ?, ?, ?, ?, ?, ?, ?, COALESCE(?, UTC_TIMESTAMP()))"+
			" ON DUPLICATE KEY UPDATE sync_status = VALUES(sync_status), provider_entity_id = VALUES(provider_entity_id),"+
			" provider_reference = VALUES(provider_reference), skip_reason = VALUES(skip_reason), error_code = VALUES(error_code),"+
			" last_sync_at = VALUES(last_sync_at)",
			e.GetEntityType(), e.GetMagentoEntityId(), e.GetProvider(), e.GetSyncStatus(),
			nullable(e.GetProviderEntityId()), nullable(e.GetProviderReference()), nullable(e.GetSkipReason()), nullable(e.GetErrorCode()), at)
		if err != nil {
			return fmt.Errorf("relay: upserting %s %s/%d: %w", SyncStateTable, e.GetEntityType(), e.GetMagentoEntityId(), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("relay: committing %d sync states: %w", len(entries), err)
	}
	if stale > 0 {
		r.backMsgs.WithLabelValues(bus.ShopSyncState+"_entry", "stale").Add(float64(stale))
	}
	return nil
}

// applyRefused dead-letters the refused row, as the module's cron does after
// the webhook's 4xx. Only a row the relay marked succeeded changes: a row an
// operator re-queued since is being sent again and will get its own answer.
func (r *Relay) applyRefused(ctx context.Context, rr *ledgerv1.RefusedRow) error {
	msg := fmt.Sprintf("HTTP %d: %s", rr.GetStatusCode(), rr.GetError())
	res, err := r.db.ExecContext(ctx, "UPDATE "+Table+" SET status = 'dead_lettered', last_status_code = ?, last_error = ?,"+
		" last_attempt_at = UTC_TIMESTAMP(), next_attempt_at = NULL WHERE idempotency_key = ? AND status = 'succeeded'",
		rr.GetStatusCode(), cut(msg), rr.GetIdempotencyKey())
	if err != nil {
		return fmt.Errorf("relay: dead-lettering the refused row %s: %w", rr.GetIdempotencyKey(), err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		r.log.Warn("relay: Ledger refused a row; dead-lettered in the shop", "idempotency_key", rr.GetIdempotencyKey(),
			"status", rr.GetStatusCode(), "code", rr.GetCode(), "reason", rr.GetError())
		r.rows.WithLabelValues("dead_lettered").Inc()
	}
	return nil
}

// nullable is the wire's "" as SQL NULL (proto3 has no null).
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
