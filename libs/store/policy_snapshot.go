package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Mapping is what the mapper made a run from and of: the policy it applied,
// the canonical Magento documents it fetched and the Sage operations it built
// (each JSON; nil when there was none, e.g. a fetch that failed).
type Mapping struct {
	Policy, Canonical, SageRequest []byte
	// Attempts are the calls the mapping made (the mapper's Magento
	// fetches), appended to the run's history with the mapping.
	Attempts []Attempt
	// Links are the entity_xref links the mapping decided (the mapper's
	// own kinds: claimed references, invoices' contacts), written (PutXref's
	// create or replace) with the mapping.
	Links []Xref
}

// RecordMapping stores a run's mapping, with its attempts and links, in one
// round trip and one transaction. A later policy edit never changes how the
// run was made; the run page shows the documents.
func (s *Store) RecordMapping(ctx context.Context, runID string, m Mapping) error {
	j := m.journal()
	if j.Empty() {
		return s.execOne(ctx, recordMappingSQL, "sync run "+runID, m.args(runID)...)
	}
	return s.withJournal(ctx, j, func(b *pgx.Batch) { b.Queue(recordMappingSQL, m.args(runID)...) })
}

const recordMappingSQL = `UPDATE sync_runs SET policy_snapshot = $2::jsonb, canonical = $3::jsonb,
		sage_request = $4::jsonb, updated_at = now() WHERE sync_run_id = $1`

func (m Mapping) args(runID string) []any {
	return []any{runID, jsonText(m.Policy), jsonText(m.Canonical), jsonText(m.SageRequest)}
}

// journal is what the mapping writes besides the run's row.
func (m Mapping) journal() Journal {
	j := Journal{Attempts: m.Attempts}
	for _, x := range m.Links {
		j.Links = append(j.Links, LinkWrite{Xref: x})
	}
	return j
}

// jsonText is a JSON document as a nullable text argument.
func jsonText(doc []byte) *string {
	if len(doc) == 0 {
		return nil
	}
	s := string(doc)
	return &s
}

// PolicySnapshot returns the policy a run was mapped with; nil when none was recorded.
func (s *Store) PolicySnapshot(ctx context.Context, runID string) ([]byte, error) {
	m, err := s.RunMapping(ctx, runID)
	return m.Policy, err
}

// RunMapping returns what RecordMapping stored for a run (nil parts when
// nothing was recorded).
func (s *Store) RunMapping(ctx context.Context, runID string) (Mapping, error) {
	var pol, canonical, req *string
	err := s.pool.QueryRow(ctx, `SELECT policy_snapshot::text, canonical::text, sage_request::text
		FROM sync_runs WHERE sync_run_id = $1`, runID).Scan(&pol, &canonical, &req)
	if err != nil {
		return Mapping{}, notFound(err, "sync run "+runID)
	}
	bytesOf := func(p *string) []byte {
		if p == nil {
			return nil
		}
		return []byte(*p)
	}
	return Mapping{Policy: bytesOf(pol), Canonical: bytesOf(canonical), SageRequest: bytesOf(req)}, nil
}
