package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ledgersync/ledger/libs/money"
)

// XrefsBySageID returns the tenant's links whose Sage id is one of ids, by
// Sage id (a document Ledger did not create has none).
func (s *Store) XrefsBySageID(ctx context.Context, tenantID string, ids []string) (map[string]Xref, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, magento_key, currency, sage_id, reference FROM entity_xref
		WHERE tenant_id = $1 AND sage_id = ANY($2)`, tenantID, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]Xref, len(ids))
	for rows.Next() {
		x := Xref{TenantID: tenantID}
		if err := rows.Scan(&x.Kind, &x.MagentoKey, &x.Currency, &x.SageID, &x.Reference); err != nil {
			return nil, err
		}
		out[x.SageID] = x
	}
	return out, rows.Err()
}

// ReconcileMark is where a tenant's last completed reconciliation pass got to.
type ReconcileMark struct {
	// HighWater is the newest updated_at or deleted_at Sage showed the pass.
	HighWater time.Time
	PassedAt  time.Time
	Examined  int
	Findings  int
}

// ReconcileMark returns the tenant's mark; ErrNotFound before its first pass.
func (s *Store) ReconcileMark(ctx context.Context, tenantID string) (ReconcileMark, error) {
	var m ReconcileMark
	err := s.pool.QueryRow(ctx, `SELECT high_water, passed_at, examined, findings FROM reconcile_marks WHERE tenant_id = $1`,
		tenantID).Scan(&m.HighWater, &m.PassedAt, &m.Examined, &m.Findings)
	return m, notFound(err, "reconcile mark "+tenantID)
}

// SetReconcileMark stores the mark of a completed pass. The high-water mark
// never moves back (a pass over an older window keeps the newer mark).
func (s *Store) SetReconcileMark(ctx context.Context, tenantID string, m ReconcileMark) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO reconcile_marks (tenant_id, high_water, passed_at, examined, findings)
		VALUES ($1, $2, now(), $3, $4)
		ON CONFLICT (tenant_id) DO UPDATE SET high_water = GREATEST(reconcile_marks.high_water, EXCLUDED.high_water),
			passed_at = now(), examined = EXCLUDED.examined, findings = EXCLUDED.findings`,
		tenantID, m.HighWater, m.Examined, m.Findings)
	return err
}

// ReconcileDocument is what a pass saw of one Ledger-created Sage document.
type ReconcileDocument struct {
	SageID       string
	SageResource string // sales_invoices | sales_credit_notes | contact_payments
	XrefKind     string
	MagentoKey   string
	Currency     string
	// Date is the document date; a deleted document keeps the one stored
	// before (its list item has none), else the deletion day.
	Date       time.Time
	SageStatus string // Sage's status id (UNPAID, PAID, VOID, …), or DELETED
	SageTotal  money.Amount
	// MagentoTotal is nil when Magento's entity could not be read.
	MagentoTotal *money.Amount
}

// Finding is one disagreement a pass found about a Sage document.
type Finding struct {
	Code          string
	SageResource  string
	SageID        string
	XrefKind      string
	MagentoKey    string
	Currency      string
	SageAmount    *money.Amount
	MagentoAmount *money.Amount
	Message       string
	FirstSeenAt   time.Time
	LastSeenAt    time.Time
	ResolvedAt    *time.Time
}

// RecordReconcile stores, in one transaction, what a pass at passAt saw of
// docs and the findings about them, and resolves every open finding of an
// examined document that this pass did not find again. It returns the
// findings that are new (first seen, or found again after being resolved).
func (s *Store) RecordReconcile(ctx context.Context, tenantID string, passAt time.Time, docs []ReconcileDocument, findings []Finding) ([]Finding, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var b pgx.Batch
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		ids = append(ids, d.SageID)
		b.Queue(`INSERT INTO reconcile_documents (tenant_id, sage_id, sage_resource, xref_kind, magento_key, currency, doc_date,
				sage_status, sage_total, magento_total, checked_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::numeric, $10::numeric, $11)
			ON CONFLICT (tenant_id, sage_id) DO UPDATE SET sage_resource = EXCLUDED.sage_resource, xref_kind = EXCLUDED.xref_kind,
				magento_key = EXCLUDED.magento_key, currency = EXCLUDED.currency,
				-- a deleted document's list item has no date: it keeps the one seen before
				doc_date = CASE WHEN EXCLUDED.sage_status = 'DELETED' THEN reconcile_documents.doc_date ELSE EXCLUDED.doc_date END,
				sage_status = EXCLUDED.sage_status, sage_total = EXCLUDED.sage_total,
				magento_total = COALESCE(EXCLUDED.magento_total, reconcile_documents.magento_total), checked_at = EXCLUDED.checked_at`,
			tenantID, d.SageID, d.SageResource, d.XrefKind, d.MagentoKey, d.Currency, d.Date.UTC().Format(time.DateOnly),
			d.SageStatus, d.SageTotal.String(), amountText(d.MagentoTotal), passAt)
	}
	fresh := make([]*bool, len(findings))
	for i, f := range findings {
		fresh[i] = new(bool)
		isNew := fresh[i]
		b.Queue(`INSERT INTO reconcile_findings (tenant_id, code, sage_resource, sage_id, xref_kind, magento_key, currency,
				sage_amount, magento_amount, message, first_seen_at, last_seen_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8::numeric, $9::numeric, $10, $11, $11)
			ON CONFLICT (tenant_id, code, sage_id) DO UPDATE SET sage_resource = EXCLUDED.sage_resource,
				xref_kind = EXCLUDED.xref_kind, magento_key = EXCLUDED.magento_key, currency = EXCLUDED.currency,
				sage_amount = EXCLUDED.sage_amount, magento_amount = EXCLUDED.magento_amount, message = EXCLUDED.message,
				last_seen_at = EXCLUDED.last_seen_at, resolved_at = NULL,
				first_seen_at = CASE WHEN reconcile_findings.resolved_at IS NULL THEN reconcile_findings.first_seen_at
					ELSE EXCLUDED.first_seen_at END
			RETURNING first_seen_at = $11`,
			tenantID, f.Code, f.SageResource, f.SageID, f.XrefKind, f.MagentoKey, f.Currency,
			amountText(f.SageAmount), amountText(f.MagentoAmount), f.Message, passAt).QueryRow(func(row pgx.Row) error {
			return row.Scan(isNew)
		})
	}
	b.Queue(`UPDATE reconcile_findings SET resolved_at = now()
		WHERE tenant_id = $1 AND sage_id = ANY($2) AND resolved_at IS NULL AND last_seen_at < $3`, tenantID, ids, passAt)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return nil, fmt.Errorf("store: recording a reconciliation page: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	var opened []Finding
	for i, f := range findings {
		if *fresh[i] {
			opened = append(opened, f)
		}
	}
	return opened, nil
}

func amountText(a *money.Amount) *string {
	if a == nil {
		return nil
	}
	s := a.String()
	return &s
}

func parseAmount(s *string) (*money.Amount, error) {
	if s == nil {
		return nil, nil
	}
	a, err := money.Parse(*s)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// FindingFilter selects stored findings.
type FindingFilter struct {
	TenantID string
	// Resolved includes findings a later pass saw resolved.
	Resolved bool
	Limit    int
}

// Findings returns the tenant's findings, the most recently seen first.
func (s *Store) Findings(ctx context.Context, f FindingFilter) ([]Finding, error) {
	rows, err := s.pool.Query(ctx, `SELECT code, sage_resource, sage_id, xref_kind, magento_key, currency,
			sage_amount::text, magento_amount::text, message, first_seen_at, last_seen_at, resolved_at
		FROM reconcile_findings WHERE tenant_id = $1 AND ($2 OR resolved_at IS NULL)
		ORDER BY last_seen_at DESC, code, sage_id LIMIT $3`, f.TenantID, f.Resolved, f.Limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Finding
	for rows.Next() {
		var x Finding
		var sa, ma *string
		if err := rows.Scan(&x.Code, &x.SageResource, &x.SageID, &x.XrefKind, &x.MagentoKey, &x.Currency, &sa, &ma,
			&x.Message, &x.FirstSeenAt, &x.LastSeenAt, &x.ResolvedAt); err != nil {
			return nil, err
		}
		var err1, err2 error
		x.SageAmount, err1 = parseAmount(sa)
		x.MagentoAmount, err2 = parseAmount(ma)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// DailyTotal is one row of the reconcile_daily_totals view.
type DailyTotal struct {
	Day             time.Time
	Currency        string
	Invoices        int64
	MagentoInvoiced money.Amount
	SageInvoiced    money.Amount
	Difference      money.Amount // Sage − Magento
}

// DailyTotals returns the tenant's invoiced totals per day and currency for
// invoice dates in [from, to] (both dates), oldest first.
func (s *Store) DailyTotals(ctx context.Context, tenantID string, from, to time.Time) ([]DailyTotal, error) {
	rows, err := s.pool.Query(ctx, `SELECT day, currency, invoices, magento_invoiced::text, sage_invoiced::text, difference::text
		FROM reconcile_daily_totals WHERE tenant_id = $1 AND day BETWEEN $2::date AND $3::date ORDER BY day, currency`,
		tenantID, from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DailyTotal
	for rows.Next() {
		var d DailyTotal
		var m, sg, diff string
		if err := rows.Scan(&d.Day, &d.Currency, &d.Invoices, &m, &sg, &diff); err != nil {
			return nil, err
		}
		var errs [3]error
		d.MagentoInvoiced, errs[0] = money.Parse(m)
		d.SageInvoiced, errs[1] = money.Parse(sg)
		d.Difference, errs[2] = money.Parse(diff)
		if err := errors.Join(errs[:]...); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
