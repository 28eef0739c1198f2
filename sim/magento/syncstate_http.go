package magentosim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ledgersync/ledger/libs/magento"
)

var (
	syncEntityTypes = []string{"invoice", "creditmemo", "customer", "product"}
	syncStatuses    = []string{SyncSynced, SyncSkipped, SyncFailed}

	pEntityType        = param{"entityType", "entity_type"}
	pMagentoEntityID   = param{"magentoEntityId", "magento_entity_id"}
	pProvider          = param{"provider", "provider"}
	pSyncStatus        = param{"syncStatus", "sync_status"}
	pProviderEntityID  = param{"providerEntityId", "provider_entity_id"}
	pProviderReference = param{"providerReference", "provider_reference"}
	pSkipReason        = param{"skipReason", "skip_reason"}
	pErrorCode         = param{"errorCode", "error_code"}
	pLastSyncAt        = param{"lastSyncAt", "last_sync_at"}
)

// SyncStateError is a 400 refusal of the sync-state callback, carrying Magento's
// message template and its %1-style parameters.
type SyncStateError struct {
	Message    string
	Parameters []any
}

// Error returns the message with its parameters substituted.
func (e *SyncStateError) Error() string {
	msg := e.Message
	for i := len(e.Parameters) - 1; i >= 0; i-- {
		msg = strings.ReplaceAll(msg, fmt.Sprintf("%%%d", i+1), fmt.Sprint(e.Parameters[i]))
	}
	return msg
}

// UpsertSyncState is SyncStateUpsert::upsert followed by upsertFromCallback
// (wire §5.1): it validates entity type, id, provider and status (pending is
// refused), defaults last_sync_at to now, and overwrites status, the four optional
// columns and last_sync_at. Values MySQL would refuse (strings longer than their
// varchar, an unparseable or out-of-range timestamp) fail with the repository's
// "Could not upsert sync state" message. Refusals are *SyncStateError.
func (s *Shop) UpsertSyncState(in magento.SyncState) error {
	if !slices.Contains(syncEntityTypes, in.EntityType) {
		return &SyncStateError{"Unknown entity_type %1; expected one of: %2", []any{in.EntityType, strings.Join(syncEntityTypes, ", ")}}
	}
	if in.MagentoEntityID <= 0 {
		return &SyncStateError{Message: "magento_entity_id must be positive"}
	}
	if in.Provider == "" {
		return &SyncStateError{Message: "provider must be non-empty"}
	}
	if !slices.Contains(syncStatuses, in.SyncStatus) {
		return &SyncStateError{
			"Invalid sync_status %1; pending is Magento-side only and must not arrive via callback. Expected: %2",
			[]any{in.SyncStatus, strings.Join(syncStatuses, ", ")},
		}
	}
	dbErr := func(sqlMsg string) error {
		return &SyncStateError{"Could not upsert sync state for %1/%2: %3", []any{in.EntityType, in.MagentoEntityID, sqlMsg}}
	}
	for _, c := range []struct {
		column string
		value  *string
		limit  int
	}{
		{"provider", &in.Provider, 32},
		{"provider_entity_id", in.ProviderEntityID, 64},
		{"provider_reference", in.ProviderReference, 64},
		{"skip_reason", in.SkipReason, 64},
		{"error_code", in.ErrorCode, 64},
	} {
		if c.value != nil && utf8.RuneCountInString(*c.value) > c.limit {
			return dbErr(fmt.Sprintf("SQLSTATE[22001]: String data, right truncated: 1406 Data too long for column '%s' at row 1", c.column))
		}
	}
	at := s.now()
	if in.LastSyncAt != "" {
		t, ok := parseMySQLTimestamp(in.LastSyncAt)
		if !ok {
			return dbErr(fmt.Sprintf("SQLSTATE[22007]: Invalid datetime format: 1292 Incorrect datetime value: '%s' for column 'last_sync_at' at row 1", in.LastSyncAt))
		}
		at = t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.upsertLocked(SyncStateRow{
		EntityType: in.EntityType, MagentoID: in.MagentoEntityID, Provider: in.Provider, SyncStatus: in.SyncStatus,
		ProviderEntityID: in.ProviderEntityID, ProviderReference: in.ProviderReference,
		SkipReason: in.SkipReason, ErrorCode: in.ErrorCode, LastSyncAt: at,
	})
	return nil
}

var (
	mysqlTimestampMin = time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC)
	mysqlTimestampMax = time.Date(2038, 1, 19, 3, 14, 7, 0, time.UTC)
)

// parseMySQLTimestamp accepts what a MySQL 8 timestamp column accepts from the
// module (session time zone UTC): "YYYY-MM-DD HH:MM:SS", the same with a "T",
// RFC 3339 with a Z or an offset, and a bare date. Fractions are rounded away.
func parseMySQLTimestamp(v string) (time.Time, bool) {
	for _, layout := range []string{
		magento.MySQLTimestamp, "2006-01-02T15:04:05", time.RFC3339Nano, "2006-01-02 15:04:05Z07:00", time.DateOnly,
	} {
		t, err := time.ParseInLocation(layout, v, time.UTC)
		if err != nil {
			continue
		}
		t = t.UTC().Round(time.Second)
		if t.Before(mysqlTimestampMin) || t.After(mysqlTimestampMax) {
			return time.Time{}, false
		}
		return t, true
	}
	return time.Time{}, false
}

func (s *Shop) serveSyncState(w http.ResponseWriter, r *http.Request) {
	m, ierr := readBody(r)
	if ierr != nil {
		writeInputError(w, ierr)
		return
	}
	if ierr := missing(m, []param{pEntityType, pMagentoEntityID, pProvider, pSyncStatus}); ierr != nil {
		writeInputError(w, ierr)
		return
	}
	var in magento.SyncState
	for _, f := range []struct {
		p   param
		dst *string
	}{{pEntityType, &in.EntityType}, {pProvider, &in.Provider}, {pSyncStatus, &in.SyncStatus}, {pLastSyncAt, &in.LastSyncAt}} {
		if raw, ok := lookup(m, f.p); ok {
			v, ierr := asString(raw)
			if ierr != nil {
				writeInputError(w, ierr)
				return
			}
			*f.dst = v
		}
	}
	raw, _ := lookup(m, pMagentoEntityID)
	id, ierr := asInt(raw)
	if ierr != nil {
		writeInputError(w, ierr)
		return
	}
	in.MagentoEntityID = id
	for _, f := range []struct {
		p   param
		dst **string
	}{{pProviderEntityID, &in.ProviderEntityID}, {pProviderReference, &in.ProviderReference}, {pSkipReason, &in.SkipReason}, {pErrorCode, &in.ErrorCode}} {
		if raw, ok := lookup(m, f.p); ok {
			v, ierr := asString(raw)
			if ierr != nil {
				writeInputError(w, ierr)
				return
			}
			*f.dst = &v
		}
	}
	if err := s.UpsertSyncState(in); err != nil {
		se := err.(*SyncStateError)
		var params any
		if len(se.Parameters) > 0 {
			params = se.Parameters
		}
		writeErr(w, http.StatusBadRequest, se.Message, params)
		return
	}
	writeJSON(w, http.StatusOK, []any{})
}
