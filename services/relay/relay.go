package relay

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ledgersync/ledger/libs/bus"
	"github.com/ledgersync/ledger/libs/magento"
	"github.com/ledgersync/ledger/libs/telemetry"
)

// The module's constants (magento-wire.md §1.4), applied to the rows the relay
// claims exactly as OutboxDrain applies them.
const (
	// MaxTransientAttempts is the module's MAX_TRANSIENT_ATTEMPTS: the 10th
	// transient failure dead-letters the row.
	MaxTransientAttempts = 10
	// StatusAccepted is what last_status_code records for a row JetStream
	// acknowledged (the webhook's 202).
	StatusAccepted = 202
	// StatusRejected is what last_status_code records for a row the relay
	// refuses to publish (the webhook's 400).
	StatusRejected = 400
	// maxErrorBody is the module's cut of a response body in last_error.
	maxErrorBody = 8192
)

// Backoff is the module's BACKOFF_SECONDS: the wait after failure n is
// Backoff[min(n,7)-1].
var Backoff = []time.Duration{60 * time.Second, 300 * time.Second, 1800 * time.Second,
	7200 * time.Second, 21600 * time.Second, 43200 * time.Second, 86400 * time.Second}

// Table is the module's outbox table.
const Table = "byte8_event_outbox"

// columns are the outbox columns the relay reads or writes, with the data
// type each must have (information_schema.COLUMNS.DATA_TYPE).
var columns = [][2]string{
	{"entity_id", "bigint"}, {"idempotency_key", "varchar"}, {"event_name", "varchar"},
	{"payload", "mediumtext"}, {"status", "varchar"}, {"attempts", "int"},
	{"last_status_code", "int"}, {"last_attempt_at", "timestamp"}, {"next_attempt_at", "timestamp"},
	{"last_error", "text"},
}

// CheckSchema refuses a shop database whose outbox table is missing or lacks a
// column the relay needs (or has it with another type), naming the table and
// the column.
func CheckSchema(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", Table)
	if err != nil {
		return fmt.Errorf("relay: reading the columns of %s: %w", Table, err)
	}
	defer rows.Close()
	have := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return fmt.Errorf("relay: reading the columns of %s: %w", Table, err)
		}
		have[strings.ToLower(name)] = strings.ToLower(typ)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("relay: reading the columns of %s: %w", Table, err)
	}
	if len(have) == 0 {
		return fmt.Errorf("relay: table %s does not exist in the database of RELAY_MYSQL_DSN: install the Byte8_Client module (bin/magento setup:upgrade) or point RELAY_MYSQL_DSN at the shop's database", Table)
	}
	var errs []error
	for _, c := range columns {
		switch typ, ok := have[c[0]]; {
		case !ok:
			errs = append(errs, fmt.Errorf("relay: table %s has no column %s: the Byte8_Client module is older or newer than this relay knows (magento-wire.md §1.1)", Table, c[0]))
		case typ != c[1]:
			errs = append(errs, fmt.Errorf("relay: table %s column %s is %s, want %s (magento-wire.md §1.1)", Table, c[0], typ, c[1]))
		}
	}
	return errors.Join(errs...)
}

// Relay tails one shop's outbox table into the INGEST stream.
type Relay struct {
	cfg Config
	db  *sql.DB
	js  jetstream.JetStream
	nc  *nats.Conn
	log *slog.Logger
	now func() time.Time

	running  atomic.Bool
	back     backState
	registry *prometheus.Registry
	rows     *prometheus.CounterVec
	failures prometheus.Counter
	lag      prometheus.Gauge
	backMsgs *prometheus.CounterVec
}

// New returns the relay over an open shop database and a NATS connection.
func New(cfg Config, db *sql.DB, nc *nats.Conn, log *slog.Logger) (*Relay, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Relay{cfg: cfg, db: db, js: js, nc: nc, log: log, now: time.Now, registry: telemetry.NewRegistry()}
	r.rows = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_relay_rows_total",
		Help: "Outbox rows the relay settled, by outcome (published: acknowledged by INGEST; dead_lettered: refused or out of transient attempts; retry: publish failed, back-off as the module).",
	}, []string{"outcome"})
	r.failures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ledger_relay_publish_failures_total",
		Help: "Batches whose publish to INGEST failed (NATS away or not acknowledging).",
	})
	r.lag = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ledger_relay_oldest_due_seconds",
		Help: "Age of the oldest due pending outbox row at the last poll (0 when none is due).",
	})
	r.backMsgs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_relay_shop_messages_total",
		Help: "Messages from Ledger's SHOP stream by kind (syncstate, refused; syncstate_entry for entries) and outcome (applied; stale: an older sync state the newest-wins rule dropped; retry: the shop's database failed; invalid: can never apply, dropped).",
	}, []string{"kind", "outcome"})
	r.registry.MustRegister(r.rows, r.failures, r.lag, r.backMsgs)
	return r, nil
}

// Handler serves /metrics.
func (r *Relay) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", telemetry.MetricsHandler(r.registry))
	return mux
}

// Registry is the relay's Prometheus registry.
func (r *Relay) Registry() *prometheus.Registry { return r.registry }

// Ready reports whether the relay polls, the shop's database answers and NATS
// is connected.
func (r *Relay) Ready(ctx context.Context) error {
	var errs []error
	if !r.running.Load() {
		errs = append(errs, errors.New("not polling the outbox yet"))
	}
	if err := r.db.PingContext(ctx); err != nil {
		errs = append(errs, fmt.Errorf("shop database: %w", err))
	}
	if !r.nc.IsConnected() {
		errs = append(errs, fmt.Errorf("NATS: %s", r.nc.Status()))
	}
	if err := r.back.check(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// BusyPollInterval is how soon the relay polls again after a pass that found
// rows (but not a full batch): while a shop keeps writing, a new row waits
// about half of it (make bench-relay: insert → OUTBOX p50 ≈ 23 ms at 200
// rows/s, against ≈ 160 ms polling every 200 ms).
const BusyPollInterval = 20 * time.Millisecond

// Run polls until ctx ends: a full batch is followed at once by the next, a
// partial one after BusyPollInterval, and each empty pass doubles the wait up
// to PollInterval, so an idle shop's database is asked at most every
// PollInterval and a busy one's rows leave within milliseconds.
func (r *Relay) Run(ctx context.Context) error {
	r.running.Store(true)
	defer r.running.Store(false)
	r.log.Info("relay: tailing the outbox", "table", Table, "tenant", r.cfg.TenantID, "poll_interval", r.cfg.PollInterval)
	wait := r.cfg.PollInterval
	for {
		n, err := r.Drain(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("relay: a pass over the outbox failed; trying again", "err", err)
		}
		switch {
		case n == r.cfg.BatchSize && err == nil:
			continue
		case n > 0:
			wait = min(BusyPollInterval, r.cfg.PollInterval)
		default:
			wait = min(2*wait, r.cfg.PollInterval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// row is one claimed outbox row.
type row struct {
	id       int64
	key      string
	event    string
	payload  string
	attempts int
}

// Drain claims one batch of due rows (status='pending' and due, oldest first,
// FOR UPDATE SKIP LOCKED: a row another relay holds is skipped), publishes
// them to INGEST, waits for the acknowledgements and records each row's
// outcome as the module's cron would, all in one transaction. It returns how
// many rows it claimed.
func (r *Relay) Drain(ctx context.Context) (int, error) {
	// A pass started finishes on shutdown: a transaction cut short would
	// leave published rows pending (sent again, answered as duplicates).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.PublishTimeout+10*time.Second)
	defer cancel()
	r.observeLag(ctx)
	// READ COMMITTED: no gap locks, so claimers and their updates do not
	// deadlock one another (SKIP LOCKED skips only row locks).
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return 0, fmt.Errorf("relay: begin: %w", err)
	}
	defer tx.Rollback()
	q, err := tx.QueryContext(ctx, "SELECT entity_id, idempotency_key, event_name, payload, attempts FROM "+Table+
		" WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= UTC_TIMESTAMP())"+
		" ORDER BY entity_id ASC LIMIT ? FOR UPDATE SKIP LOCKED", r.cfg.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("relay: claiming rows: %w", err)
	}
	var batch []row
	for q.Next() {
		var w row
		if err := q.Scan(&w.id, &w.key, &w.event, &w.payload, &w.attempts); err != nil {
			q.Close()
			return 0, fmt.Errorf("relay: reading a claimed row: %w", err)
		}
		batch = append(batch, w)
	}
	q.Close()
	if err := q.Err(); err != nil {
		return 0, fmt.Errorf("relay: claiming rows: %w", err)
	}
	if len(batch) == 0 {
		return 0, nil
	}

	// Publish every valid row, then wait for the acknowledgements.
	type sent struct {
		row
		fut jetstream.PubAckFuture
		err error
	}
	var out []sent
	for _, w := range batch {
		if reason := badPayload(w.payload); reason != "" {
			if err := r.deadLetter(ctx, tx, w, StatusRejected, "HTTP 400: relay refused the row: "+reason); err != nil {
				return 0, err
			}
			continue
		}
		s := sent{row: w}
		s.fut, s.err = r.publishAsync(w)
		out = append(out, s)
	}
	wait, stop := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer stop()
	var ok []int64
	failed := false
	for i := range out {
		s := &out[i]
		if s.err == nil {
			select {
			case <-s.fut.Ok():
			case s.err = <-s.fut.Err():
			case <-wait.Done():
				s.err = fmt.Errorf("no acknowledgement from INGEST within %s", r.cfg.PublishTimeout)
			}
		}
		if s.err == nil {
			ok = append(ok, s.id)
			continue
		}
		failed = true
		if err := r.transient(ctx, tx, s.row, s.err); err != nil {
			return 0, err
		}
	}
	if len(ok) > 0 {
		if err := r.succeeded(ctx, tx, ok); err != nil {
			return 0, err
		}
	}
	if failed {
		r.failures.Inc()
	}
	if err := tx.Commit(); err != nil {
		// The rows stay pending: published ones come again and ingest
		// answers them as duplicates of their live runs.
		return 0, fmt.Errorf("relay: recording the outcome of %d rows: %w", len(batch), err)
	}
	r.rows.WithLabelValues("published").Add(float64(len(ok)))
	return len(batch), nil
}

// publishAsync publishes one row: the payload byte for byte on
// ledger.ingest.<tenant>.<event>, Idempotency-Key the row's key, Nats-Msg-Id
// <tenant>:<key> (bus.RelayMsgID), Authorization a fresh token as the module's Signer mints it.
func (r *Relay) publishAsync(w row) (jetstream.PubAckFuture, error) {
	tok, err := magento.MintOutbound(r.cfg.APIKey.Reveal(), r.cfg.TenantID, r.now())
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(bus.IngestSubject(r.cfg.TenantID, w.event))
	m.Data = []byte(w.payload)
	m.Header.Set("Authorization", "Bearer "+tok)
	m.Header.Set("Idempotency-Key", w.key)
	m.Header.Set("Content-Type", "application/json")
	return r.js.PublishMsgAsync(m, jetstream.WithMsgID(bus.RelayMsgID(r.cfg.TenantID, w.key)))
}

// succeeded records the module's 2xx outcome.
func (r *Relay) succeeded(ctx context.Context, tx *sql.Tx, ids []int64) error {
	args := make([]any, 0, len(ids)+1)
	args = append(args, StatusAccepted)
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := tx.ExecContext(ctx, "UPDATE "+Table+" SET status = 'succeeded', attempts = attempts + 1, last_status_code = ?,"+
		" last_attempt_at = UTC_TIMESTAMP(), next_attempt_at = NULL, last_error = NULL"+
		" WHERE entity_id IN (?"+strings.Repeat(",?", len(ids)-1)+")", args...)
	if err != nil {
		return fmt.Errorf("relay: marking %d rows succeeded: %w", len(ids), err)
	}
	return nil
}

// deadLetter records the module's 4xx outcome (or transient exhaustion, with
// code nil).
func (r *Relay) deadLetter(ctx context.Context, tx *sql.Tx, w row, code any, msg string) error {
	_, err := tx.ExecContext(ctx, "UPDATE "+Table+" SET status = 'dead_lettered', attempts = attempts + 1, last_status_code = ?,"+
		" last_attempt_at = UTC_TIMESTAMP(), next_attempt_at = NULL, last_error = ? WHERE entity_id = ?", code, cut(msg), w.id)
	if err != nil {
		return fmt.Errorf("relay: dead-lettering row %d: %w", w.id, err)
	}
	r.log.Warn("relay: row dead-lettered", "entity_id", w.id, "idempotency_key", w.key, "reason", msg)
	r.rows.WithLabelValues("dead_lettered").Inc()
	return nil
}

// transient records the module's transient outcome: back-off, or
// dead-lettered at the 10th failure.
func (r *Relay) transient(ctx context.Context, tx *sql.Tx, w row, cause error) error {
	n := w.attempts + 1
	msg := "Network error publishing to Ledger's INGEST stream: " + cause.Error()
	if n >= MaxTransientAttempts {
		return r.deadLetter(ctx, tx, w, nil, "transient_exhausted: retries capped at MAX_TRANSIENT_ATTEMPTS without success — last error: "+msg)
	}
	wait := r.cfg.Backoff[min(n, len(r.cfg.Backoff))-1]
	_, err := tx.ExecContext(ctx, "UPDATE "+Table+" SET status = 'pending', attempts = ?, last_status_code = NULL,"+
		" last_attempt_at = UTC_TIMESTAMP(), next_attempt_at = UTC_TIMESTAMP() + INTERVAL ? SECOND, last_error = ? WHERE entity_id = ?",
		n, wait.Seconds(), cut(msg), w.id)
	if err != nil {
		return fmt.Errorf("relay: backing off row %d: %w", w.id, err)
	}
	r.rows.WithLabelValues("retry").Inc()
	return nil
}

// badPayload says why a payload cannot be published (ingest would answer 400:
// not one JSON object, or no integer magento_entity_id), or "".
func badPayload(p string) string {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(p), &fields); err != nil || fields == nil {
		return "payload is not a JSON object"
	}
	raw, ok := fields["magento_entity_id"]
	if !ok {
		return "payload has no magento_entity_id"
	}
	var id int64
	if err := json.Unmarshal(raw, &id); err != nil || id < 0 {
		return "magento_entity_id is not an integer ≥ 0"
	}
	return ""
}

// cut applies the module's 8 KiB cut to last_error.
func cut(s string) string {
	if len(s) <= maxErrorBody {
		return s
	}
	return s[:maxErrorBody] + "…[truncated]"
}

// observeLag sets the age of the oldest due pending row.
func (r *Relay) observeLag(ctx context.Context) {
	var age sql.NullInt64
	err := r.db.QueryRowContext(ctx, "SELECT TIMESTAMPDIFF(SECOND, MIN(created_at), UTC_TIMESTAMP()) FROM "+Table+
		" WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= UTC_TIMESTAMP())").Scan(&age)
	if err == nil {
		r.lag.Set(float64(max(age.Int64, 0)))
	}
}
