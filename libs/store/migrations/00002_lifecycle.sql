-- +goose Up
-- What a run needs to be re-run (row retry) without the shop re-sending it:
-- the envelope's ids, time and payload.
ALTER TABLE sync_runs
    ADD COLUMN website_id  bigint NOT NULL DEFAULT 0,
    ADD COLUMN store_id    bigint NOT NULL DEFAULT 0,
    ADD COLUMN occurred_at text NOT NULL DEFAULT '',
    ADD COLUMN payload     jsonb;

-- Keyset walks over finished runs (backfill, dashboards).
CREATE INDEX sync_runs_finished ON sync_runs (tenant_id, status, finished_at, sync_run_id);

-- How sync-state callbacks reach the shop: the PHP module's HTTP endpoint, or
-- a gRPC SyncStateService for receivers that are not the PHP module.
ALTER TABLE bindings
    ADD COLUMN callback_transport   text NOT NULL DEFAULT 'http' CHECK (callback_transport IN ('http', 'grpc')),
    ADD COLUMN callback_grpc_target text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE bindings DROP COLUMN callback_grpc_target, DROP COLUMN callback_transport;
DROP INDEX sync_runs_finished;
ALTER TABLE sync_runs DROP COLUMN payload, DROP COLUMN occurred_at, DROP COLUMN store_id, DROP COLUMN website_id;
