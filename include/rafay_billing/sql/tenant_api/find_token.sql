-- The token a request presents (by its public id): its org, what to check the secret against, and
-- whether it may be used now (not revoked, not expired, by the database's clock).
SELECT org_id, secret_hash, salt, kdf,
       revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) AS usable
FROM billing.api_tokens
WHERE token_id = %(token_id)s;
