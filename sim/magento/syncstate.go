package magentosim

import (
	"cmp"
	"slices"
	"time"
)

// Sync statuses of byte8_entity_sync_state (wire §5.2).
const (
	SyncPending = "pending"
	SyncSynced  = "synced"
	SyncSkipped = "skipped"
	SyncFailed  = "failed"
)

// SyncStateRow is one row of byte8_entity_sync_state (wire §5.2).
type SyncStateRow struct {
	EntityID          int64     `json:"entity_id"`
	EntityType        string    `json:"entity_type"`
	MagentoID         int64     `json:"magento_id"`
	Provider          string    `json:"provider"`
	SyncStatus        string    `json:"sync_status"`
	ProviderEntityID  *string   `json:"provider_entity_id"`
	ProviderReference *string   `json:"provider_reference"`
	SkipReason        *string   `json:"skip_reason"`
	ErrorCode         *string   `json:"error_code"`
	LastSyncAt        time.Time `json:"last_sync_at"`
}

type syncKey struct {
	entityType string
	magentoID  int64
	provider   string
}

func (r *SyncStateRow) clone() SyncStateRow {
	c := *r
	for _, p := range []**string{&c.ProviderEntityID, &c.ProviderReference, &c.SkipReason, &c.ErrorCode} {
		if *p != nil {
			v := **p
			*p = &v
		}
	}
	return c
}

// markPendingLocked is EntitySyncStateRepository::markPending: INSERT … ON
// DUPLICATE KEY UPDATE last_sync_at, so a terminal status is never overwritten.
func (s *Shop) markPendingLocked(entityType string, id int64, provider string, now time.Time) {
	k := syncKey{entityType, id, provider}
	if r, ok := s.syncState[k]; ok {
		r.LastSyncAt = now
		return
	}
	s.nextSyncRowID++
	s.syncState[k] = &SyncStateRow{
		EntityID: s.nextSyncRowID, EntityType: entityType, MagentoID: id, Provider: provider,
		SyncStatus: SyncPending, LastSyncAt: now,
	}
}

// upsertLocked is upsertFromCallback: it overwrites status, the four optional
// columns (nil clears them) and last_sync_at.
func (s *Shop) upsertLocked(in SyncStateRow) {
	k := syncKey{in.EntityType, in.MagentoID, in.Provider}
	r, ok := s.syncState[k]
	if !ok {
		s.nextSyncRowID++
		r = &SyncStateRow{EntityID: s.nextSyncRowID, EntityType: in.EntityType, MagentoID: in.MagentoID, Provider: in.Provider}
		s.syncState[k] = r
	}
	r.SyncStatus = in.SyncStatus
	r.ProviderEntityID = in.ProviderEntityID
	r.ProviderReference = in.ProviderReference
	r.SkipReason = in.SkipReason
	r.ErrorCode = in.ErrorCode
	r.LastSyncAt = in.LastSyncAt
}

// SyncStates returns every sync-state row ordered by entity_id.
func (s *Shop) SyncStates() []SyncStateRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SyncStateRow, 0, len(s.syncState))
	for _, r := range s.syncState {
		out = append(out, r.clone())
	}
	slices.SortFunc(out, func(a, b SyncStateRow) int { return cmp.Compare(a.EntityID, b.EntityID) })
	return out
}

// SyncState returns the sage_accounting row for (entityType, magentoID).
func (s *Shop) SyncState(entityType string, magentoID int64) (SyncStateRow, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.syncState[syncKey{entityType, magentoID, ProviderSage}]
	if !ok {
		return SyncStateRow{}, false
	}
	return r.clone(), true
}
