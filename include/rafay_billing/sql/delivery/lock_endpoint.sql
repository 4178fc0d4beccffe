-- One delivery run per endpoint at a time (session lock, released by unlock_endpoint.sql or on disconnect).
SELECT pg_try_advisory_lock(hashtext('billing.deliveries'), hashtext(%(endpoint)s));
