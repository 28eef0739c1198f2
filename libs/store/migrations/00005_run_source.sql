-- +goose Up
-- The stream sequence of the OUTBOX message that started a run's current
-- attempt. A redelivery of that same message (the mapper crashed after
-- publishing its SageWrite, before acknowledging) must not restart a run the
-- writer has since failed, and must publish the same SageWrite message id so
-- JetStream stores it once; a new message for the run (an operator's retry or
-- replay, a re-sent webhook) starts a new attempt.
ALTER TABLE sync_runs ADD COLUMN source_seq bigint;

-- +goose Down
ALTER TABLE sync_runs DROP COLUMN source_seq;
