-- +goose Up
-- Unfinished runs by the time they last changed: what `ledgerctl runs
-- recover` looks for after NATS lost its store (the work that was in flight).
CREATE INDEX sync_runs_unfinished ON sync_runs (updated_at, sync_run_id) WHERE status IN ('pending', 'running');

-- +goose Down
DROP INDEX sync_runs_unfinished;
