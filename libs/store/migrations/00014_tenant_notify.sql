-- +goose Up
-- Every change to a tenant's own rows (the tenant, its bindings, its Sage
-- tokens, its policy, its Sage reference data) is announced on the channel
-- ledger_tenant_changed with the tenant id, when it commits. Services keep
-- these rows in memory (store.CacheTenants) and forget a tenant's copy when
-- its id is announced, however the row was changed (an RPC, another replica,
-- an operator's psql).
-- +goose StatementBegin
CREATE FUNCTION ledger_notify_tenant_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('ledger_tenant_changed', OLD.tenant_id);
    ELSE
        PERFORM pg_notify('ledger_tenant_changed', NEW.tenant_id);
        IF TG_OP = 'UPDATE' AND NEW.tenant_id IS DISTINCT FROM OLD.tenant_id THEN
            PERFORM pg_notify('ledger_tenant_changed', OLD.tenant_id);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER tenants_notify AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION ledger_notify_tenant_changed();
CREATE TRIGGER bindings_notify AFTER INSERT OR UPDATE OR DELETE ON bindings
    FOR EACH ROW EXECUTE FUNCTION ledger_notify_tenant_changed();
CREATE TRIGGER oauth_tokens_notify AFTER INSERT OR UPDATE OR DELETE ON oauth_tokens
    FOR EACH ROW EXECUTE FUNCTION ledger_notify_tenant_changed();
CREATE TRIGGER policies_notify AFTER INSERT OR UPDATE OR DELETE ON policies
    FOR EACH ROW EXECUTE FUNCTION ledger_notify_tenant_changed();
CREATE TRIGGER ref_cache_notify AFTER INSERT OR UPDATE OR DELETE ON ref_cache
    FOR EACH ROW EXECUTE FUNCTION ledger_notify_tenant_changed();

-- +goose Down
DROP TRIGGER ref_cache_notify ON ref_cache;
DROP TRIGGER policies_notify ON policies;
DROP TRIGGER oauth_tokens_notify ON oauth_tokens;
DROP TRIGGER bindings_notify ON bindings;
DROP TRIGGER tenants_notify ON tenants;
DROP FUNCTION ledger_notify_tenant_changed();
