package store

import "context"

// SetPolicySnapshot records the policy a run was mapped with (sync_runs.policy_snapshot),
// so a later policy edit never changes how a past run can be explained. The mapper
// writes it on every processing attempt; the latest attempt wins.
func (s *Store) SetPolicySnapshot(ctx context.Context, runID string, doc []byte) error {
	return s.execOne(ctx, `UPDATE sync_runs SET policy_snapshot = $2::jsonb, updated_at = now() WHERE sync_run_id = $1`,
		"sync run "+runID, runID, string(doc))
}

// PolicySnapshot returns the policy a run was mapped with; nil when none was recorded.
func (s *Store) PolicySnapshot(ctx context.Context, runID string) ([]byte, error) {
	var doc *string
	err := s.pool.QueryRow(ctx, `SELECT policy_snapshot::text FROM sync_runs WHERE sync_run_id = $1`, runID).Scan(&doc)
	if err != nil {
		return nil, notFound(err, "sync run "+runID)
	}
	if doc == nil {
		return nil, nil
	}
	return []byte(*doc), nil
}
