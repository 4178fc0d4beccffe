-- 015: per-org API tokens of the tenant statements API (issue 24, part 2: rafay-billing serve-tenant-api).
--
-- * billing.api_tokens: one row per token `rbt_<token_id>_<secret>`. Only a salted hash of the secret is
--   stored (scrypt with a per-token salt; `kdf` names the parameters), never the token itself. token_id is
--   the public lookup prefix (it is shown by `rafay-billing tenant-token list`); the secret is not.
-- * A token is history: never deleted (revoke it), its org, hash, salt and expiry never change, a
--   revocation is final, and last_used_at only moves forward. The tenant API's own role may UPDATE
--   last_used_at and nothing else (db/grant_roles.sql); the writer creates and revokes.
-- * The audit log accepts 'tenant_token_create' and 'tenant_token_revoke'. The action check is extended,
--   not replaced (as 013 does), so the actions other migrations add are kept.
-- Idempotent on its own, like every migration file.

CREATE TABLE IF NOT EXISTS billing.api_tokens (
    token_id      text        PRIMARY KEY CHECK (token_id ~ '^[a-z0-9]{12}$'),
    org_id        text        NOT NULL CHECK (org_id <> ''),
    secret_hash   bytea       NOT NULL CHECK (octet_length(secret_hash) = 32),
    salt          bytea       NOT NULL CHECK (octet_length(salt) >= 16),
    kdf           text        NOT NULL CHECK (kdf ~ '^scrypt:n=[0-9]+,r=[0-9]+,p=[0-9]+$'),
    label         text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text        NOT NULL CHECK (created_by <> ''),
    expires_at    timestamptz NULL,
    revoked_at    timestamptz NULL,
    revoked_by    text        NULL,
    last_used_at  timestamptz NULL,
    CONSTRAINT api_tokens_revoked_by CHECK ((revoked_at IS NULL) = (revoked_by IS NULL)),
    CONSTRAINT api_tokens_expires_after_creation CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX IF NOT EXISTS api_tokens_org ON billing.api_tokens (org_id);

CREATE OR REPLACE FUNCTION billing.guard_api_token() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'API token % of org % is never deleted: revoke it (rafay-billing tenant-token revoke %)',
            OLD.token_id, OLD.org_id, OLD.token_id USING ERRCODE = 'restrict_violation';
    END IF;
    IF (NEW.token_id, NEW.org_id, NEW.secret_hash, NEW.salt, NEW.kdf, NEW.label, NEW.created_at, NEW.created_by)
       IS DISTINCT FROM (OLD.token_id, OLD.org_id, OLD.secret_hash, OLD.salt, OLD.kdf, OLD.label, OLD.created_at,
                         OLD.created_by)
       OR NEW.expires_at IS DISTINCT FROM OLD.expires_at THEN
        RAISE EXCEPTION 'API token %: only its revocation and last-used time change (create a new token instead)',
            OLD.token_id USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.revoked_at IS NOT NULL AND (NEW.revoked_at, NEW.revoked_by) IS DISTINCT FROM (OLD.revoked_at, OLD.revoked_by) THEN
        RAISE EXCEPTION 'API token % was revoked at % by %: a revocation is final', OLD.token_id, OLD.revoked_at,
            OLD.revoked_by USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.last_used_at IS DISTINCT FROM OLD.last_used_at
       AND (NEW.last_used_at IS NULL OR NEW.last_used_at < OLD.last_used_at) THEN
        RAISE EXCEPTION 'API token %: last_used_at only moves forward (% -> %)', OLD.token_id, OLD.last_used_at,
            NEW.last_used_at USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS api_tokens_guard ON billing.api_tokens;
CREATE TRIGGER api_tokens_guard BEFORE UPDATE OR DELETE ON billing.api_tokens
    FOR EACH ROW EXECUTE FUNCTION billing.guard_api_token();

-- --- the audit log's new actions ----------------------------------------------------------------------
-- Whatever its name, each check on audit_log.action is widened by each action it does not name yet.
DO $$
DECLARE
    c record;
    new_action text;
BEGIN
    FOREACH new_action IN ARRAY ARRAY['tenant_token_create', 'tenant_token_revoke']
    LOOP
        FOR c IN
            SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
            WHERE conrelid = 'billing.audit_log'::regclass AND contype = 'c'
              AND pg_get_constraintdef(oid) ~ '\maction\M' AND position(new_action IN pg_get_constraintdef(oid)) = 0
        LOOP
            EXECUTE format('ALTER TABLE billing.audit_log DROP CONSTRAINT %I, ADD CONSTRAINT %I CHECK ((%s) OR action = %L)',
                           c.conname, c.conname, substring(c.def FROM '^CHECK \((.*)\)$'), new_action);
        END LOOP;
    END LOOP;
END
$$;
