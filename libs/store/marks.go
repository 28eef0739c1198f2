package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// CallbackMark returns when the newest result delivered to Magento for an entity
// finished; ok is false when nothing was delivered yet.
func (s *Store) CallbackMark(ctx context.Context, tenantID, entityType string, magentoID int64) (finishedAt time.Time, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT finished_at FROM callback_marks
		WHERE tenant_id = $1 AND entity_type = $2 AND magento_entity_id = $3`, tenantID, entityType, magentoID).Scan(&finishedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	return finishedAt, err == nil, err
}

// SetCallbackMark records a delivered result; the mark only moves forward.
func (s *Store) SetCallbackMark(ctx context.Context, tenantID, entityType string, magentoID int64, finishedAt time.Time, runID string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO callback_marks (tenant_id, entity_type, magento_entity_id, finished_at, sync_run_id)
		VALUES ($1,$2,$3,$4,$5)
		ON CONFLICT (tenant_id, entity_type, magento_entity_id) DO UPDATE
		SET finished_at = EXCLUDED.finished_at, sync_run_id = EXCLUDED.sync_run_id, delivered_at = now()
		WHERE callback_marks.finished_at <= EXCLUDED.finished_at`,
		tenantID, entityType, magentoID, finishedAt, runID)
	return err
}

// Policy returns a tenant's policy document (JSON); "{}" when none was set.
func (s *Store) Policy(ctx context.Context, tenantID string) ([]byte, error) {
	var doc []byte
	err := s.pool.QueryRow(ctx, `SELECT doc FROM policies WHERE tenant_id = $1`, tenantID).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return []byte("{}"), nil
	}
	return doc, err
}

// SetPolicy stores a tenant's policy document; the caller validates it first.
func (s *Store) SetPolicy(ctx context.Context, tenantID string, doc []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO policies (tenant_id, doc) VALUES ($1, $2)
		ON CONFLICT (tenant_id) DO UPDATE SET doc = EXCLUDED.doc, updated_at = now()`, tenantID, doc)
	return err
}

// RefCache returns a cached Sage reference list (JSON) and when it was fetched;
// ErrNotFound when it was never fetched.
func (s *Store) RefCache(ctx context.Context, tenantID, kind string) ([]byte, time.Time, error) {
	var doc []byte
	var at time.Time
	err := s.pool.QueryRow(ctx, `SELECT doc, fetched_at FROM ref_cache WHERE tenant_id = $1 AND kind = $2`, tenantID, kind).Scan(&doc, &at)
	return doc, at, notFound(err, "ref_cache "+kind)
}

// SetRefCache stores a freshly fetched Sage reference list.
func (s *Store) SetRefCache(ctx context.Context, tenantID, kind string, doc []byte) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO ref_cache (tenant_id, kind, doc) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, kind) DO UPDATE SET doc = EXCLUDED.doc, fetched_at = now()`, tenantID, kind, doc)
	return err
}
