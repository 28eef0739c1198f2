-- +goose Up
-- Where a sync-state backfill (ledgerctl backfill sync-state) stopped, so an
-- interrupted backfill resumes after the last batch it published. One row per
-- tenant, set of entity types (sorted, comma-joined) and lower time bound;
-- after_* is the keyset position over (finished_at, sync_run_id) of the last
-- published run. completed_at is set when the walk reached the end; the next
-- backfill with the same key starts over.
CREATE TABLE backfill_cursors (
    tenant_id         text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    entity_types      text NOT NULL,
    since             timestamptz NOT NULL,
    after_finished_at timestamptz,
    after_run_id      uuid,
    pushed            bigint NOT NULL DEFAULT 0,
    skipped           bigint NOT NULL DEFAULT 0,
    started_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    PRIMARY KEY (tenant_id, entity_types, since)
);

-- +goose Down
DROP TABLE backfill_cursors;
