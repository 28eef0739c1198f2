package ingest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/ledgersync/ledger/libs/shophealth"
	"github.com/ledgersync/ledger/libs/store"
)

// TileHealth is the body of GET /v1/tile/health, the shape the
// Magento admin tile reads.
type TileHealth struct {
	Tenant  TileTenant  `json:"tenant"`
	Binding TileBinding `json:"binding"`
	Sync    TileSync    `json:"sync"`
	// Health is Ledger's verdict on the shop side (libs/shophealth), an
	// addition the module ignores until it reads it (wire §2.2: all keys
	// optional, unknown keys ignored).
	Health TileShopHealth `json:"health"`
}

// TileShopHealth is the shop-side verdict: ok, silent, auth_drift, not_paired
// or never_sent, with one sentence saying what to do.
type TileShopHealth struct {
	Verdict string `json:"verdict"`
	Message string `json:"message"`
}

// TileTenant is the Magento side: pending, active or token_revoked.
type TileTenant struct {
	MagentoConnectionStatus string `json:"magento_connection_status"`
}

// TileBinding is the Sage side: the binding status and its region.
type TileBinding struct {
	Status string `json:"status"`
	Region string `json:"region,omitempty"`
}

// TileSync summarises the tenant's sync runs. LastRunAt is the latest finish
// time, RFC 3339 UTC, omitted when no run has finished. DeadLetterCount (an
// addition) is the tenant's messages in Ledger's DLQ stream, every stage,
// omitted when NATS could not be read; they are not folded into failed_24h,
// which keeps its meaning (runs failed in the last 24 h; most dead letters
// are failed runs counted there while they are recent). LastWebhookAt (an
// addition) is the last delivery Ledger accepted from the shop, omitted when
// none.
type TileSync struct {
	PendingCount    int64  `json:"pending_count"`
	Failed24h       int64  `json:"failed_24h"`
	LastRunAt       string `json:"last_run_at,omitempty"`
	DeadLetterCount *int64 `json:"dead_letter_count,omitempty"`
	LastWebhookAt   string `json:"last_webhook_at,omitempty"`
}

// tileHealth serves GET /v1/tile/health.
func (s *Service) tileHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	t, err := s.authenticate(ctx, r.Header, "", s.now(), "")
	if err != nil {
		s.writeFailure(w, r, "", err)
		return
	}
	c, err := s.st.RunCounts(ctx, t.ID)
	if err != nil {
		s.unavailable(w, r, t.ID, &unavailableError{"database unavailable", err})
		return
	}
	h := TileHealth{
		Tenant:  TileTenant{MagentoConnectionStatus: t.Binding.MagentoConnectionStatus},
		Binding: TileBinding{Status: t.Binding.Status, Region: t.Binding.SageRegion},
		Sync:    TileSync{PendingCount: c.Pending, Failed24h: c.Failed24h},
	}
	if c.LastRunAt != nil {
		h.Sync.LastRunAt = c.LastRunAt.UTC().Format(time.RFC3339)
	}
	act, err := s.st.ShopActivity(ctx, t.ID)
	if err != nil {
		s.unavailable(w, r, t.ID, &unavailableError{"database unavailable", err})
		return
	}
	// This very call is no delivery: the admin page answers while the cron
	// may be stopped, which is what the verdict is for.
	if !act.LastWebhookAt.IsZero() {
		h.Sync.LastWebhookAt = act.LastWebhookAt.UTC().Format(time.RFC3339)
	}
	verdict := shophealth.Judge(shophealth.Facts{
		MagentoStatus: t.Binding.MagentoConnectionStatus, Paired: t.Binding.APIKey != "",
		LastWebhookAt: act.LastWebhookAt, UnauthorizedRecent: act.UnauthorizedRecent,
		LastUnauthorizedAt: act.LastUnauthorizedAt, Now: s.now(),
	}, s.cfg.ShopSilentAfter)
	h.Health = TileShopHealth{Verdict: verdict.Verdict, Message: verdict.Message}
	if n, err := s.deadLetters(ctx, t.ID); err != nil {
		s.log.WarnContext(ctx, "ingest: could not count the tenant's dead letters for the tile; dead_letter_count left out", "tenant", t.ID, "err", err)
	} else {
		h.Sync.DeadLetterCount = &n
	}
	writeJSON(w, http.StatusOK, h)
}

// disconnect serves POST /v1/tenant/disconnect: the shop is about
// to delete its credentials, so the binding is revoked and the api key
// forgotten. A second call carries a key Ledger no longer knows and gets 401,
// which the shop swallows.
func (s *Service) disconnect(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.RequestTimeout)
	defer cancel()
	t, err := s.authenticate(ctx, r.Header, "", s.now(), "")
	if err != nil {
		s.writeFailure(w, r, "", err)
		return
	}
	// The body is the literal {}; nothing in it matters.
	_, _ = io.Copy(io.Discard, r.Body)
	if err := s.st.SetMagentoStatus(ctx, t.ID, store.StatusRevoked); err != nil {
		s.unavailable(w, r, t.ID, &unavailableError{"database unavailable", err})
		return
	}
	s.log.InfoContext(r.Context(), "ingest: shop disconnected; binding revoked", "tenant", t.ID)
	w.WriteHeader(http.StatusNoContent)
}

// EntityStatus is the body of GET /v1/status: the newest sync run of one
// entity, or a null SyncRun when Ledger has none.
type EntityStatus struct {
	EntityType string     `json:"entity_type"`
	EntityID   int64      `json:"entity_id"`
	SyncRun    *RunStatus `json:"sync_run"`
}

// RunStatus describes one sync run.
type RunStatus struct {
	SyncRunID  string `json:"sync_run_id"`
	Event      string `json:"event"`
	Status     string `json:"status"` // pending | running | succeeded | skipped | failed
	SageID     string `json:"sage_id,omitempty"`
	SkipReason string `json:"skip_reason,omitempty"`
	ErrorCode  string `json:"error_code,omitempty"`
	Message    string `json:"message,omitempty"`
	CreatedAt  string `json:"created_at"`
	FinishedAt string `json:"finished_at,omitempty"`
}

// status serves GET /v1/status?entity_type=&entity_id=. The Byte8 client
// declares it, though no current module calls it.
func (s *Service) status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	t, err := s.authenticate(ctx, r.Header, "", s.now(), "")
	if err != nil {
		s.writeFailure(w, r, "", err)
		return
	}
	q := r.URL.Query()
	for _, name := range []string{"entity_type", "entity_id"} {
		if len(q[name]) > 1 {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", Field: name,
				Message: name + " is given more than once; give it once"})
			return
		}
	}
	entityType := q.Get("entity_type")
	switch entityType {
	case "invoice", "creditmemo", "customer", "product":
	default:
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", Field: "entity_type",
			Message: "entity_type must be invoice, creditmemo, customer or product"})
		return
	}
	id, err := strconv.ParseInt(q.Get("entity_id"), 10, 64)
	if err != nil || id < 0 {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_request", Field: "entity_id",
			Message: "entity_id must be the Magento id of the entity, an integer of 0 or more"})
		return
	}
	out := EntityStatus{EntityType: entityType, EntityID: id}
	run, err := s.st.LatestRun(ctx, t.ID, entityType, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		s.unavailable(w, r, t.ID, &unavailableError{"database unavailable", err})
		return
	default:
		rs := &RunStatus{
			SyncRunID: run.ID, Event: run.Event, Status: run.Status, SageID: run.SageID,
			SkipReason: run.SkipReason, ErrorCode: run.ErrorCode, Message: run.LastError,
			CreatedAt: run.CreatedAt.UTC().Format(time.RFC3339),
		}
		if run.FinishedAt != nil {
			rs.FinishedAt = run.FinishedAt.UTC().Format(time.RFC3339)
		}
		out.SyncRun = rs
	}
	writeJSON(w, http.StatusOK, out)
}
