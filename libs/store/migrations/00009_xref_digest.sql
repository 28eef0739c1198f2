-- +goose Up
-- body_digest: the hex SHA-256 of the body Ledger last wrote to the document
-- (libs/sagewrite's Digest of what a PUT of it sends), kept for operations that
-- may update their document (contacts, products, services). The writer makes no
-- call when what it would send has the same digest, and PUTs the document when
-- it differs. '' means unknown: a link made before digests were kept, or by an
-- operator's relink (ledgerctl xref set), so the next update sends one PUT and
-- stores the digest.
ALTER TABLE entity_xref ADD COLUMN body_digest text NOT NULL DEFAULT '';

-- What a succeeded run did in Sage: created (at least one document), updated
-- (none created, at least one PUT) or unchanged (no call). '' for other
-- statuses and for runs finished before it was recorded.
ALTER TABLE sync_runs ADD COLUMN sage_change text NOT NULL DEFAULT ''
    CHECK (sage_change IN ('', 'created', 'updated', 'unchanged'));

-- +goose Down
ALTER TABLE sync_runs DROP COLUMN sage_change;
ALTER TABLE entity_xref DROP COLUMN body_digest;
