package store

import (
	"context"
)

// Xref links a Magento identity to a Sage document.
type Xref struct {
	TenantID   string
	Kind       string // contact | invoice | credit_note | payment | product | service
	MagentoKey string
	Currency   string
	SageID     string
	Reference  string
}

// Xref looks up a link; ErrNotFound when there is none.
func (s *Store) Xref(ctx context.Context, tenantID, kind, magentoKey, currency string) (Xref, error) {
	x := Xref{TenantID: tenantID, Kind: kind, MagentoKey: magentoKey, Currency: currency}
	err := s.pool.QueryRow(ctx, `SELECT sage_id, reference FROM entity_xref
		WHERE tenant_id = $1 AND kind = $2 AND magento_key = $3 AND currency = $4`,
		tenantID, kind, magentoKey, currency).Scan(&x.SageID, &x.Reference)
	return x, notFound(err, "entity_xref "+kind+" "+magentoKey)
}

// PutXref creates or replaces a link (replacing is the operator's relink).
func (s *Store) PutXref(ctx context.Context, x Xref) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO entity_xref (tenant_id, kind, magento_key, currency, sage_id, reference)
		VALUES ($1,$2,$3,$4,$5,$6)
		ON CONFLICT (tenant_id, kind, magento_key, currency)
		DO UPDATE SET sage_id = EXCLUDED.sage_id, reference = EXCLUDED.reference, updated_at = now()`,
		x.TenantID, x.Kind, x.MagentoKey, x.Currency, x.SageID, x.Reference)
	return err
}

// XrefCount counts a tenant's links of one kind.
func (s *Store) XrefCount(ctx context.Context, tenantID, kind string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM entity_xref WHERE tenant_id = $1 AND kind = $2`, tenantID, kind).Scan(&n)
	return n, err
}
