-- +goose Up
-- Operator console sessions (services/admin): a browser that logged in with
-- the operator credential holds a random 256-bit session id in an HttpOnly
-- cookie; only its SHA-256 is kept here, so reading this table does not give a
-- usable session. csrf_token is the session's form token (every POST carries
-- it). A session ends at expires_at (a bounded lifetime) or at logout; expired
-- rows are deleted whenever a new session starts.
CREATE TABLE console_sessions (
    id_hash     bytea       PRIMARY KEY CHECK (length(id_hash) = 32),
    csrf_token  text        NOT NULL CHECK (csrf_token <> ''),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- +goose Down
DROP TABLE console_sessions;
