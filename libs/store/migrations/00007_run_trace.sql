-- +goose Up
-- The trace of the webhook that started a run (W3C ids, hex): the dashboard
-- links a run to its trace, and an operator's retry links its new trace to
-- this one (a link names a span, hence the span id of ingest's server span).
-- NULL for runs accepted before tracing, or inserted by hand.
ALTER TABLE sync_runs ADD COLUMN trace_id text, ADD COLUMN trace_span_id text;

-- +goose Down
ALTER TABLE sync_runs DROP COLUMN trace_id, DROP COLUMN trace_span_id;
