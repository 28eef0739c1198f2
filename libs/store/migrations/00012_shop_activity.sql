-- +goose Up
-- What ingest learns about each shop from its deliveries (the seed's "cron not
-- running" and "auth drift"): libs/store/shopactivity.go.
--
-- last_webhook_at: the newest webhook or relayed outbox row ingest accepted
-- for the tenant, a repeat of a live run included (the shop is alive even when
-- nothing new is recorded). Ingest keeps it in memory and writes it for all
-- tenants in one statement every few seconds (never per event), and never
-- moves it backwards (GREATEST), so replicas may write in any order.
--
-- unauthorized_at: the newest deliveries refused as unauthorized that looked
-- like the shop's own (a token for this tenant that failed its signature),
-- newest first, at most the drift threshold of them, each within
-- unauthorized_window and after last_webhook_at when it was written.
CREATE TABLE shop_activity (
    tenant_id                text        PRIMARY KEY REFERENCES tenants ON DELETE CASCADE,
    last_webhook_at          timestamptz,
    unauthorized_at          timestamptz[] NOT NULL DEFAULT '{}',
    unauthorized_window      interval    NOT NULL DEFAULT '10 minutes',
    last_unauthorized_at     timestamptz,
    last_unauthorized_reason text        NOT NULL DEFAULT '',
    updated_at               timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE shop_activity;
