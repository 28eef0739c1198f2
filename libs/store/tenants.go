package store

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Magento connection and Sage binding states.
const (
	StatusPending      = "pending"
	StatusActive       = "active"
	StatusTokenRevoked = "token_revoked"
	StatusRevoked      = "revoked"
)

// Tenant is a tenant with its binding.
type Tenant struct {
	ID        string
	Name      string
	CreatedAt time.Time
	Binding   Binding
}

// Binding is a tenant's two connections. APIKey is the plaintext master secret
// (opened from its sealed column), empty when not paired.
type Binding struct {
	TenantID                string
	MagentoBaseURL          string
	APIKey                  string
	MagentoConnectionStatus string
	Status                  string // Sage side
	SageBusinessID          string
	SageRegion              string
	PairedAt                *time.Time
	// CallbackTransport is how sync states reach the shop: "http" (the PHP
	// module's endpoint), "grpc" (a SyncStateService at CallbackGRPCTarget)
	// or "nats" (the SHOP stream, applied by the tenant's relay).
	CallbackTransport  string
	CallbackGRPCTarget string
}

var tenantIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidTenantID reports whether id can be a tenant id (it is a URL segment and the
// JWT sub): 1–64 letters, digits, '-' or '_'.
func ValidTenantID(id string) error {
	if !tenantIDPattern.MatchString(id) {
		return fmt.Errorf("tenant id %q: use 1–64 letters, digits, '-' or '_'", id)
	}
	return nil
}

// CreateTenant inserts a tenant and its (pending) binding. Creating an existing
// tenant returns it unchanged.
func (s *Store) CreateTenant(ctx context.Context, id, name string) (Tenant, error) {
	if err := ValidTenantID(id); err != nil {
		return Tenant{}, err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO tenants (tenant_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, id, name); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO bindings (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING`, id)
		return err
	})
	if err != nil {
		return Tenant{}, fmt.Errorf("store: create tenant: %w", err)
	}
	s.changedTenant(id)
	return s.Tenant(ctx, id)
}

const tenantCols = `t.tenant_id, t.name, t.created_at, b.magento_base_url, b.api_key_sealed,
	b.magento_connection_status, b.status, b.sage_business_id, b.sage_region, b.paired_at,
	b.callback_transport, b.callback_grpc_target`

func (s *Store) scanTenant(row pgx.Row) (Tenant, error) {
	var t Tenant
	var sealed []byte
	b := &t.Binding
	if err := row.Scan(&t.ID, &t.Name, &t.CreatedAt, &b.MagentoBaseURL, &sealed,
		&b.MagentoConnectionStatus, &b.Status, &b.SageBusinessID, &b.SageRegion, &b.PairedAt,
		&b.CallbackTransport, &b.CallbackGRPCTarget); err != nil {
		return Tenant{}, err
	}
	b.TenantID = t.ID
	if len(sealed) > 0 {
		key, err := s.sealer.OpenString(sealed)
		if err != nil {
			return Tenant{}, fmt.Errorf("store: tenant %s api key: %w", t.ID, err)
		}
		b.APIKey = key
	}
	return t, nil
}

// Tenant returns one tenant with its binding, or ErrNotFound.
// With CacheTenants it is served from memory.
func (s *Store) Tenant(ctx context.Context, id string) (Tenant, error) {
	return cached(s, func(c *tenantCache) map[string]Tenant { return c.tenants }, id, func() (Tenant, error) {
		t, err := s.scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantCols+` FROM tenants t JOIN bindings b USING (tenant_id) WHERE t.tenant_id = $1`, id))
		if err != nil {
			return Tenant{}, notFound(err, "tenant "+id)
		}
		return t, nil
	})
}

// Tenants lists every tenant, oldest first.
func (s *Store) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tenantCols+` FROM tenants t JOIN bindings b USING (tenant_id) ORDER BY t.created_at, t.tenant_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		t, err := s.scanTenant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// SetMagentoPaired stores a successful pairing: shop URL, sealed api key, active.
func (s *Store) SetMagentoPaired(ctx context.Context, tenantID, shopURL, apiKey string) error {
	sealed, err := s.sealer.SealString(apiKey)
	if err != nil {
		return err
	}
	return s.updateBinding(ctx, tenantID, `UPDATE bindings SET magento_base_url = $2, api_key_sealed = $3,
		magento_connection_status = 'active', paired_at = now(), updated_at = now() WHERE tenant_id = $1`,
		tenantID, shopURL, sealed)
}

// SetMagentoStatus changes magento_connection_status (token_revoked, revoked, active).
// Revoking also forgets the api key: no signed traffic is accepted until re-pairing.
func (s *Store) SetMagentoStatus(ctx context.Context, tenantID, status string) error {
	q := `UPDATE bindings SET magento_connection_status = $2, updated_at = now() WHERE tenant_id = $1`
	if status == StatusRevoked {
		q = `UPDATE bindings SET magento_connection_status = $2, api_key_sealed = NULL, updated_at = now() WHERE tenant_id = $1`
	}
	return s.updateBinding(ctx, tenantID, q, tenantID, status)
}

// SetSageStatus changes the Sage-side binding status and, when businessID is not
// empty, the business it writes to.
func (s *Store) SetSageStatus(ctx context.Context, tenantID, status, businessID string) error {
	return s.updateBinding(ctx, tenantID, `UPDATE bindings SET status = $2,
		sage_business_id = CASE WHEN $3 = '' THEN sage_business_id ELSE $3 END, updated_at = now()
		WHERE tenant_id = $1`, tenantID, status, businessID)
}

// RecordPairingAttempt keeps the history of pairing attempts for operators.
func (s *Store) RecordPairingAttempt(ctx context.Context, tenantID, shopURL, outcome, message string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO pairing_attempts (tenant_id, shop_url, outcome, message) VALUES ($1,$2,$3,$4)`,
		tenantID, shopURL, outcome, message)
	return err
}

func (s *Store) execOne(ctx context.Context, q, what string, args ...any) error {
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// updateBinding runs q, a statement that changes exactly tenantID's binding
// row, then forgets the tenant's cached copy.
func (s *Store) updateBinding(ctx context.Context, tenantID, q string, args ...any) error {
	defer s.changedTenant(tenantID)
	return s.execOne(ctx, q, "tenant "+tenantID, args...)
}

// SetSageRegion records the region Sage authorised the binding in (the OAuth
// callback's country, lower-cased: gb, ie, us, ca, …).
func (s *Store) SetSageRegion(ctx context.Context, tenantID, region string) error {
	return s.updateBinding(ctx, tenantID, `UPDATE bindings SET sage_region = $2, updated_at = now() WHERE tenant_id = $1`,
		tenantID, strings.ToLower(strings.TrimSpace(region)))
}

// Sync-state transports (bindings.callback_transport).
const (
	TransportHTTP = "http"
	TransportGRPC = "grpc"
	TransportNATS = "nats"
)

// SetCallbackTransport chooses how a binding's sync states are delivered:
// "http" or "nats" (target ignored) or "grpc" with a host:port target.
func (s *Store) SetCallbackTransport(ctx context.Context, tenantID, transport, grpcTarget string) error {
	if transport != TransportHTTP && transport != TransportGRPC && transport != TransportNATS {
		return fmt.Errorf("callback transport %q: use http, grpc or nats", transport)
	}
	if transport != TransportGRPC {
		grpcTarget = ""
	}
	if transport == "grpc" && strings.TrimSpace(grpcTarget) == "" {
		return fmt.Errorf("callback transport grpc needs a target such as shop.example.com:443")
	}
	return s.updateBinding(ctx, tenantID, `UPDATE bindings SET callback_transport = $2, callback_grpc_target = $3, updated_at = now() WHERE tenant_id = $1`,
		tenantID, transport, strings.TrimSpace(grpcTarget))
}

// DataVersions identify the current rows of a tenant's policy and Sage
// reference data: each is built from the rows' xmin (the transaction that
// wrote them), so any change to a row, however made, changes it. A reader may
// keep what it parsed from the rows and reload only when a version differs.
type DataVersions struct {
	Policy string // "" when the tenant has no policy row
	Refs   string // "" when no reference data was ever fetched
}

// TenantWithVersions is Tenant plus the DataVersions of its policy and
// reference data, in one statement. With CacheTenants it is served from
// memory (a change to the policy or the reference data is announced too).
func (s *Store) TenantWithVersions(ctx context.Context, id string) (Tenant, DataVersions, error) {
	tv, err := cached(s, func(c *tenantCache) map[string]versionedTenant { return c.versioned }, id, func() (versionedTenant, error) {
		var v DataVersions
		t, err := s.scanTenant(extraScan{row: s.pool.QueryRow(ctx, `SELECT `+tenantCols+`,
		COALESCE((SELECT p.xmin::text FROM policies p WHERE p.tenant_id = t.tenant_id), ''),
		COALESCE((SELECT string_agg(r.kind || ':' || r.xmin::text, ',' ORDER BY r.kind) FROM ref_cache r WHERE r.tenant_id = t.tenant_id), '')
		FROM tenants t JOIN bindings b USING (tenant_id) WHERE t.tenant_id = $1`, id), extra: []any{&v.Policy, &v.Refs}})
		if err != nil {
			return versionedTenant{}, notFound(err, "tenant "+id)
		}
		return versionedTenant{t, v}, nil
	})
	return tv.Tenant, tv.Versions, err
}

// versionedTenant is what TenantWithVersions returns.
type versionedTenant struct {
	Tenant   Tenant
	Versions DataVersions
}

// extraScan scans a row into a scanner's destinations and then extra.
type extraScan struct {
	row   pgx.Row
	extra []any
}

func (e extraScan) Scan(dest ...any) error { return e.row.Scan(append(dest, e.extra...)...) }
