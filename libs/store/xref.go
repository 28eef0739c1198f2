package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Xref links a Magento identity to a Sage document.
type Xref struct {
	TenantID   string
	Kind       string // contact | invoice | credit_note | payment | product | service
	MagentoKey string
	Currency   string
	SageID     string
	Reference  string
	// Digest is the digest of the body Ledger last wrote to the document
	// (sagewrite.Digest), "" when unknown: a link made before digests were
	// kept, by an operator, or by an operation that never updates.
	Digest string
}

// Xref looks up a link; ErrNotFound when there is none.
func (s *Store) Xref(ctx context.Context, tenantID, kind, magentoKey, currency string) (Xref, error) {
	x := Xref{TenantID: tenantID, Kind: kind, MagentoKey: magentoKey, Currency: currency}
	err := s.pool.QueryRow(ctx, xrefSQL, tenantID, kind, magentoKey, currency).Scan(&x.SageID, &x.Reference, &x.Digest)
	return x, notFound(err, "entity_xref "+kind+" "+magentoKey)
}

const xrefSQL = `SELECT sage_id, reference, body_digest FROM entity_xref
		WHERE tenant_id = $1 AND kind = $2 AND magento_key = $3 AND currency = $4`

// XrefKey names one link of a tenant.
type XrefKey struct {
	Kind, MagentoKey, Currency string
}

// Xrefs looks up several links of one tenant in one statement and returns
// those that exist, by key (a key without a link is absent from the map).
func (s *Store) Xrefs(ctx context.Context, tenantID string, keys []XrefKey) (map[XrefKey]Xref, error) {
	if len(keys) == 0 {
		return map[XrefKey]Xref{}, nil
	}
	rows, err := s.pool.Query(ctx, xrefsSQL, xrefsArgs(tenantID, keys)...)
	if err != nil {
		return nil, err
	}
	return scanXrefs(rows, tenantID, len(keys))
}

// xrefsSQL looks each key up on its own (LATERAL: one primary-key probe per
// key), where a join would read every link of the tenant.
const xrefsSQL = `SELECT x.kind, x.magento_key, x.currency, x.sage_id, x.reference, x.body_digest
		FROM unnest($2::text[], $3::text[], $4::text[]) AS k(kind, magento_key, currency)
		CROSS JOIN LATERAL (SELECT * FROM entity_xref e
			WHERE e.tenant_id = $1 AND e.kind = k.kind AND e.magento_key = k.magento_key AND e.currency = k.currency) x`

func xrefsArgs(tenantID string, keys []XrefKey) []any {
	kinds, mkeys, curs := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		kinds[i], mkeys[i], curs[i] = k.Kind, k.MagentoKey, k.Currency
	}
	return []any{tenantID, kinds, mkeys, curs}
}

func scanXrefs(rows pgx.Rows, tenantID string, n int) (map[XrefKey]Xref, error) {
	defer rows.Close()
	out := make(map[XrefKey]Xref, n)
	for rows.Next() {
		x := Xref{TenantID: tenantID}
		if err := rows.Scan(&x.Kind, &x.MagentoKey, &x.Currency, &x.SageID, &x.Reference, &x.Digest); err != nil {
			return nil, err
		}
		out[XrefKey{x.Kind, x.MagentoKey, x.Currency}] = x
	}
	return out, rows.Err()
}

// PutXref creates or replaces a link (replacing is the operator's relink),
// with x.Digest as the digest of the body last written ("" for unknown, which
// makes the next update of the document send it once).
func (s *Store) PutXref(ctx context.Context, x Xref) error {
	_, err := s.pool.Exec(ctx, putXrefSQL, putXrefArgs(x)...)
	return err
}

const putXrefSQL = `INSERT INTO entity_xref (tenant_id, kind, magento_key, currency, sage_id, reference, body_digest)
		VALUES ($1,$2,$3,$4,$5,$6,$7)
		ON CONFLICT (tenant_id, kind, magento_key, currency)
		DO UPDATE SET sage_id = EXCLUDED.sage_id, reference = EXCLUDED.reference, body_digest = EXCLUDED.body_digest,
			updated_at = now()`

func putXrefArgs(x Xref) []any {
	return []any{x.TenantID, x.Kind, x.MagentoKey, x.Currency, x.SageID, x.Reference, x.Digest}
}

// SetXrefDigest records digest as the body last written to the linked
// document, if the link still names sageID (an operator's relink since the
// write keeps the link's own, so the relinked document is brought up to date
// by the next update). It reports whether the link was changed.
func (s *Store) SetXrefDigest(ctx context.Context, tenantID, kind, magentoKey, currency, sageID, digest string) (bool, error) {
	tag, err := s.pool.Exec(ctx, setXrefDigestSQL, tenantID, kind, magentoKey, currency, sageID, digest)
	return tag.RowsAffected() == 1, err
}

const setXrefDigestSQL = `UPDATE entity_xref SET body_digest = $6, updated_at = now()
		WHERE tenant_id = $1 AND kind = $2 AND magento_key = $3 AND currency = $4 AND sage_id = $5`

// XrefCount counts a tenant's links of one kind.
func (s *Store) XrefCount(ctx context.Context, tenantID, kind string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM entity_xref WHERE tenant_id = $1 AND kind = $2`, tenantID, kind).Scan(&n)
	return n, err
}
