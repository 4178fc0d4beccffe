SELECT pg_advisory_unlock(hashtext('billing.deliveries'), hashtext(%(endpoint)s));
