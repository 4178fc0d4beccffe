-- Every use of a token records when (the only write the tenant API's role may make; never backwards).
UPDATE billing.api_tokens SET last_used_at = greatest(last_used_at, now())
WHERE token_id = %(token_id)s;
