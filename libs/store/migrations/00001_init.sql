-- +goose Up
-- Ledger's schema. Secrets (api keys, OAuth tokens) are stored sealed with
-- AES-GCM under LEDGER_SECRET_KEY (libs/secrets); nothing here is plaintext.

CREATE TABLE tenants (
    tenant_id  text PRIMARY KEY CHECK (tenant_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name       text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One binding per tenant: the Magento side (pairing) and the Sage side (OAuth).
CREATE TABLE bindings (
    tenant_id                 text PRIMARY KEY REFERENCES tenants ON DELETE CASCADE,
    magento_base_url          text NOT NULL DEFAULT '',
    api_key_sealed            bytea,
    magento_connection_status text NOT NULL DEFAULT 'pending'
        CHECK (magento_connection_status IN ('pending', 'active', 'token_revoked', 'revoked')),
    -- Sage connection: pending until OAuth completes.
    status                    text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'active', 'token_revoked', 'revoked')),
    sage_business_id          text NOT NULL DEFAULT '',
    sage_region               text NOT NULL DEFAULT 'uk',
    paired_at                 timestamptz,
    updated_at                timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pairing_attempts (
    id         bigserial PRIMARY KEY,
    tenant_id  text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    shop_url   text NOT NULL,
    outcome    text NOT NULL,
    message    text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Sage OAuth tokens; the refresh token rotates on every use, so it is replaced in
-- the same statement as the access token (version guards concurrent writers).
CREATE TABLE oauth_tokens (
    tenant_id            text PRIMARY KEY REFERENCES tenants ON DELETE CASCADE,
    access_token_sealed  bytea NOT NULL,
    refresh_token_sealed bytea NOT NULL,
    access_expires_at    timestamptz NOT NULL,
    refresh_expires_at   timestamptz NOT NULL,
    scope                text NOT NULL DEFAULT '',
    requested_by_id      text NOT NULL DEFAULT '',
    version              bigint NOT NULL DEFAULT 1,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- CSRF state of Sage authorization requests (single use).
CREATE TABLE oauth_states (
    state      text PRIMARY KEY,
    tenant_id  text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz
);

-- Per-tenant sync policy and mappings (DESIGN §3), validated before it is stored.
CREATE TABLE policies (
    tenant_id  text PRIMARY KEY REFERENCES tenants ON DELETE CASCADE,
    doc        jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Sage reference data per tenant (tax_rates, ledger_accounts, bank_accounts,
-- payment_methods), refreshed at connect, every 24 h and on demand.
CREATE TABLE ref_cache (
    tenant_id  text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    kind       text NOT NULL,
    doc        jsonb NOT NULL,
    fetched_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, kind)
);

-- Magento identity → Sage document. Kept on disconnect, so a re-pair never
-- duplicates anything in Sage.
CREATE TABLE entity_xref (
    tenant_id   text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    kind        text NOT NULL,
    magento_key text NOT NULL,
    currency    text NOT NULL DEFAULT '',
    sage_id     text NOT NULL,
    reference   text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, kind, magento_key, currency)
);

-- One run per accepted event delivery.
CREATE TABLE sync_runs (
    sync_run_id       uuid PRIMARY KEY,
    tenant_id         text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    event             text NOT NULL,
    idempotency_key   text NOT NULL,
    entity_type       text NOT NULL DEFAULT '',
    magento_entity_id bigint NOT NULL DEFAULT 0,
    status            text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'succeeded', 'skipped', 'failed')),
    sage_id           text NOT NULL DEFAULT '',
    skip_reason       text NOT NULL DEFAULT '',
    error_class       text NOT NULL DEFAULT '',
    error_code        text NOT NULL DEFAULT '',
    last_error        text NOT NULL DEFAULT '',
    attempts          int NOT NULL DEFAULT 0,
    applied_quirks    text[] NOT NULL DEFAULT '{}',
    policy_snapshot   jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_runs_tenant_status ON sync_runs (tenant_id, status);
CREATE INDEX sync_runs_tenant_created ON sync_runs (tenant_id, created_at DESC);
CREATE INDEX sync_runs_entity ON sync_runs (tenant_id, entity_type, magento_entity_id);

-- Every HTTP attempt a run made (Magento fetches and Sage calls).
CREATE TABLE sync_attempts (
    id           bigserial PRIMARY KEY,
    sync_run_id  uuid NOT NULL REFERENCES sync_runs ON DELETE CASCADE,
    stage        text NOT NULL,
    method       text NOT NULL DEFAULT '',
    path         text NOT NULL DEFAULT '',
    http_status  int NOT NULL DEFAULT 0,
    duration_ms  int NOT NULL DEFAULT 0,
    request_id   text NOT NULL DEFAULT '',
    outcome      text NOT NULL,
    error_source text NOT NULL DEFAULT '',
    envelope     text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_attempts_run ON sync_attempts (sync_run_id, id);

-- Webhook dedup: tenant + Idempotency-Key → the run it created. published_at is
-- set once JetStream acknowledged the event; a key seen but never published is
-- published again on the next delivery.
CREATE TABLE webhook_keys (
    tenant_id       text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    idempotency_key text NOT NULL,
    sync_run_id     uuid NOT NULL,
    published_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, idempotency_key)
);
CREATE INDEX webhook_keys_created ON webhook_keys (created_at);

-- The newest result mirrored to Magento per entity, so an older result is never
-- delivered after a newer one.
CREATE TABLE callback_marks (
    tenant_id         text NOT NULL REFERENCES tenants ON DELETE CASCADE,
    entity_type       text NOT NULL,
    magento_entity_id bigint NOT NULL,
    finished_at       timestamptz NOT NULL,
    sync_run_id       uuid NOT NULL,
    delivered_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, entity_type, magento_entity_id)
);

-- +goose Down
DROP TABLE callback_marks, webhook_keys, sync_attempts, sync_runs, entity_xref, ref_cache, policies,
    oauth_states, oauth_tokens, pairing_attempts, bindings, tenants;
