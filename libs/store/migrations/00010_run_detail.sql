-- +goose Up
-- What a run was made of, for the operator's run page: the canonical Magento
-- documents the mapper fetched (an object keyed "<kind>/<id>") and the Sage
-- operations it built for the sage-writer. Written in the statement that
-- already stored the policy snapshot, so recording them costs no commit.
ALTER TABLE sync_runs ADD COLUMN canonical jsonb, ADD COLUMN sage_request jsonb;

-- +goose Down
ALTER TABLE sync_runs DROP COLUMN sage_request, DROP COLUMN canonical;
