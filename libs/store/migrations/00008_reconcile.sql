-- +goose Up
-- Per-tenant work the admin service runs on a schedule: the 24-hour refresh of
-- the Sage reference data (job 'refdata') and the reconciliation pass (job
-- 'reconcile'). A replica claims a due row by moving lease_until forward in one
-- UPDATE (FOR UPDATE SKIP LOCKED), so with several admin replicas each tenant's
-- job runs once; nothing is held while it runs, and a replica that dies while
-- holding a claim gives it up when the lease ends. due_at carries the jitter.
CREATE TABLE tenant_jobs (
    tenant_id       text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    job             text NOT NULL,
    due_at          timestamptz NOT NULL,
    lease_until     timestamptz NOT NULL DEFAULT '-infinity',
    last_started_at timestamptz,
    last_ok_at      timestamptz,
    last_error      text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, job)
);
CREATE INDEX tenant_jobs_due ON tenant_jobs (job, due_at);

-- Where the last completed reconciliation pass of a tenant got to: the newest
-- updated_at / deleted_at Sage showed it (Sage's clock, not Ledger's). The
-- next pass lists what changed since then.
CREATE TABLE reconcile_marks (
    tenant_id  text PRIMARY KEY REFERENCES tenants ON DELETE CASCADE,
    high_water timestamptz NOT NULL,
    passed_at  timestamptz NOT NULL DEFAULT now(),
    examined   int NOT NULL DEFAULT 0,
    findings   int NOT NULL DEFAULT 0
);

-- What a reconciliation pass found: one row per (tenant, code, Sage document),
-- reopened when found again, resolved_at set when a later pass sees the
-- document agree again. Never acted on automatically.
CREATE TABLE reconcile_findings (
    tenant_id      text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    code           text NOT NULL,
    sage_resource  text NOT NULL,
    sage_id        text NOT NULL,
    xref_kind      text NOT NULL DEFAULT '',
    magento_key    text NOT NULL DEFAULT '',
    currency       text NOT NULL DEFAULT '',
    sage_amount    numeric(20, 2),
    magento_amount numeric(20, 2),
    message        text NOT NULL,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz,
    PRIMARY KEY (tenant_id, code, sage_id)
);
CREATE INDEX reconcile_findings_open ON reconcile_findings (tenant_id, last_seen_at DESC) WHERE resolved_at IS NULL;

-- The last state a pass saw of each Ledger-created Sage document (its Sage
-- total and status, Magento's total): what the daily totals add up.
CREATE TABLE reconcile_documents (
    tenant_id     text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    sage_id       text NOT NULL,
    sage_resource text NOT NULL,
    xref_kind     text NOT NULL,
    magento_key   text NOT NULL,
    currency      text NOT NULL,
    doc_date      date NOT NULL,
    sage_status   text NOT NULL,
    sage_total    numeric(20, 2) NOT NULL,
    magento_total numeric(20, 2),
    checked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sage_id)
);
CREATE INDEX reconcile_documents_day ON reconcile_documents (tenant_id, sage_resource, doc_date);

-- Invoiced per tenant, currency and invoice date: Magento's grand totals of
-- the invoices Ledger created in Sage against what Sage holds for them now
-- (void and deleted invoices count 0).
CREATE VIEW reconcile_daily_totals AS
SELECT tenant_id, currency, doc_date AS day,
       count(*) AS invoices,
       COALESCE(sum(magento_total), 0) AS magento_invoiced,
       sum(CASE WHEN sage_status IN ('VOID', 'DELETED') THEN 0 ELSE sage_total END) AS sage_invoiced,
       sum(CASE WHEN sage_status IN ('VOID', 'DELETED') THEN 0 ELSE sage_total END) - COALESCE(sum(magento_total), 0) AS difference
FROM reconcile_documents
WHERE sage_resource = 'sales_invoices'
GROUP BY tenant_id, currency, doc_date;

-- Finding Ledger's link of a Sage document by its id.
CREATE INDEX entity_xref_sage ON entity_xref (tenant_id, sage_id);

-- +goose Down
DROP INDEX entity_xref_sage;
DROP VIEW reconcile_daily_totals;
DROP TABLE reconcile_documents, reconcile_findings, reconcile_marks, tenant_jobs;
